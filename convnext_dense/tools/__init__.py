"""The logic behind the scripts in the repository's ``tools/``: each script parses its arguments and calls one of
these modules (``cli`` holds what the train and test scripts share)."""
