"""One view per tab (summary, findings, nodes, calibration, plan, log) and the dialogs."""
