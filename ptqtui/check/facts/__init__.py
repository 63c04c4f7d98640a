"""The facts rules read, one module a job; `ptqtui.check.context.Context` computes each once.

- `missing`: `MissingFact`, raised when a fact cannot be had (the rule is then skipped).
- `stats`: per-sample and set-wide statistics of the calibration data (`ArrayStats`,
  `DataStats`, `SampleSet`).
- `float_model`: the float model run on the probe's inputs: the simulator's float path when
  it ran, else one plain onnxruntime session (`FloatModel`).
- `samples`: the seeded choice of samples the probes read, and their model inputs.
- `probe`: the model-response probe (`ProbeVerdict`, `VariantScore`, `ProbeStrength`).
- `evaluation`: float-model predictions and the evaluation probe (`Predictions`, `EvalProbe`).
- `forensics`: resize matches, the channel-order test (energy distance), the other-layout
  reader.
"""
