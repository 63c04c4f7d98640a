"""Built-in rules, one module per rule, installed as ptqtui.rules.

Every module here that defines `RULE` and `check(ctx)` is a rule (the registry finds them with
pkgutil, in code order); modules starting with '_' are helpers. Codes: PTQ0xx input pipeline,
PTQ1xx calibration files, PTQ2xx config, PTQ3xx layer numerics, PTQ4xx what the
converter's own log says (`--mapper-log`, `ptqtui log`). Codes are never reused.
"""
