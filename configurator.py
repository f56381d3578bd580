"""
Overrides a script's module-level config from the command line, nanoGPT style:
    python train.py configs/shakespeare_char.py --batch_size=32 --compile=False
A bare argument is a config file (Python, executed); --key=value sets one key (a Python literal,
or a plain string). Keys must already exist in the script, and values must keep the default's type
(an int may stand for a float; keys listed in `optional` may also be None), else we exit naming
the bad key or value. Use it as: configure(globals(), sys.argv[1:]).
"""

import ast
import types


def _check(key, value, defaults, optional):
    if key not in defaults or key.startswith("_") or isinstance(defaults[key], types.ModuleType) \
            or callable(defaults[key]):
        raise SystemExit(f"error: unknown config key {key!r}")
    want = optional.get(key, type(defaults[key]))  # a type, or a tuple of types (e.g. float or str)
    wants = want if isinstance(want, tuple) else (want,)
    if value is None and (key in optional or defaults[key] is None):
        return None
    if float in wants and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if defaults[key] is None and key not in optional:
        return value
    if not isinstance(value, wants) or (int in wants and isinstance(value, bool)):
        raise SystemExit(f"error: config key {key!r} wants {' or '.join(t.__name__ for t in wants)}, "
                         f"got {value!r} ({type(value).__name__})")
    return value


def configure(defaults, argv, optional=None):
    """Apply config files and --key=value overrides in argv to the dict `defaults` (a module's globals).
    optional maps keys whose default is None to the type they take otherwise."""
    optional = optional or {}
    for arg in argv:
        if not arg.startswith("--"):
            try:
                with open(arg) as f:
                    src = f.read()
            except OSError as e:
                raise SystemExit(f"error: cannot read config file {arg!r}: {e.strerror}")
            print(f"Overriding config with {arg}:\n{src}")
            scope = {}
            exec(compile(src, arg, "exec"), scope)
            for key, value in scope.items():
                if key.startswith("_") or isinstance(value, types.ModuleType):
                    continue
                defaults[key] = _check(key, value, defaults, optional)
        else:
            if "=" not in arg:
                raise SystemExit(f"error: expected --key=value, got {arg!r}")
            key, val = arg[2:].split("=", 1)
            try:
                value = val if isinstance(defaults.get(key), str) else ast.literal_eval(val)
            except (SyntaxError, ValueError):
                value = val  # a plain string; the type check below names it if a string is wrong here
            defaults[key] = _check(key, value, defaults, optional)
            print(f"Overriding: {key} = {defaults[key]!r}")
