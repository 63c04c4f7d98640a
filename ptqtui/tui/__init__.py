"""The Textual front end: `app.make_app` (live) and `app.make_viewer` (a saved Diagnosis)."""
