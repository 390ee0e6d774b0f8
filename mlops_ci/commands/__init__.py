"""One module per subcommand: ``add_arguments(parser)`` and ``run(args) -> exit code``.

Commands parse, call one library function, print its result and return an exit code. The
module level stays light; library imports happen inside ``run``.
"""
