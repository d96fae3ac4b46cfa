from rslp.espredict_runner import EsPredictRunner

runner = EsPredictRunner(
    'model.yaml',
    'dataset.json',
    'partition_strategies.yaml',
    'postprocessing_strategies.yaml',
    'prediction/test-request1.geojson',
    scratch_path='scratch/'
)
partition_id = 'my-existing-partition-id'  # Replace with the actual partition ID you want to run
partitions = runner.partition()
for partition_id in partitions:
    runner.run_inference(partition_id)
