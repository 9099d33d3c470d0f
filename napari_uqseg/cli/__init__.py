"""The ``uqseg`` command line: thin parsers that call one core function each."""
