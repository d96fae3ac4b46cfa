from rslp.espredict_runner import EsPredictRunner

runner = EsPredictRunner(
    'model.yaml',
    'dataset.json',
    'partition_strategies.yaml',
    'postprocessing_strategies.yaml',
    'prediction/test-request1.geojson',
    scratch_path='scratch/'
)
partitions = runner.partition()
for partition_id in partitions:
    runner.build_dataset(partition_id)
    runner.run_inference(partition_id)
    runner.postprocess(partition_id)

runner.combine(partitions)
