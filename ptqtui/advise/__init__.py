"""The triage plan and the config patch.

- `plan.build_plan(findings, analysis, measurer, config, ...)`: the ordered, graded steps;
  `plan.plan_for_inputs(...)` is the same on `run_analysis`'s SimContext (what `diagnose`
  calls); `plan.patch_settings` patches the config for any what-if settings (the TUI).
- `measurer.Measurer`: what the planner needs from the simulator; `SimMeasurer` adapts the
  analyses' SimContext, including pipeline fixes emulated on the calibration data.
- `patch.apply_changes(text, changes)`: the user's YAML text with changes, comments kept;
  `patch.write_patched_config(plan, out, user_config)` for `--write-config`.
"""
