"""The plan's stages, one module each, in the reference's order: `pipeline`, `calibration`,
`calibration_set`, `precision`, `nodes`, `qat`. Each is a function `(State, Env) ->
(drafts, State)`; `common` holds the records and the metered what-if service they share."""
