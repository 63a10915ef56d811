"""Sub-commands of ``cmc``.

Each module here defines ``NAME`` (the sub-command), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``.  The command line discovers
them with :func:`pkgutil.iter_modules`, so adding a command is adding a module.
Modules import their heavy dependencies inside ``run`` so that ``cmc --help``
stays fast.
"""
