from rslp.espredict_runner import EsPredictRunner

runner = EsPredictRunner(
    'model.yaml',
    'dataset.json',
    'partition_strategies.yaml',
    'postprocessing_strategies.yaml',
    'prediction/test-request1.geojson',
    scratch_path='scratch/'
)
partition_id = 'north-lakes'  # Replace with the actual partition ID you want to run
runner.run_inference(partition_id)
