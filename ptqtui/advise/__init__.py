"""The triage plan and the config patch.

- `plan.build_plan(findings, analysis, whatif, config, ...)`: the ordered, graded steps, each
  stage a module of `advise/steps/` over the what-if service (`analysis.whatif`);
- `patch.apply_changes(text, changes)`: the user's YAML text with changes, comments kept;
  `patch.patch_remedy(text, remedy, base)` for a `Remedy` (the TUI's what-if choices);
  `patch.write_patched_config(plan, out, user_config)` for `--write-config`.
"""
