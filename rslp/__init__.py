"""rslp: run rslearn models on prediction requests."""
