"""ssmlab: from a continuous state space model to Mamba, stage by stage (the full description is
replaced below by the compiled module's own, which lists every stage's names)."""
# The package is a thin shell around the compiled extension ssmlab._core (python/*.cpp): every
# public name of it is re-exported here, so `import ssmlab as ssm; ssm.make_ssm(…)` and the stage
# submodules (`ssm.hippo`, `ssm.s4`, `ssm.mamba`, …) read as before; the package form is what
# lets `python3 -m ssmlab` (__main__.py) and a normal installation into site-packages work.
import sys as _sys

from . import _core
from ._core import *  # noqa: F401,F403
from ._core import __version__  # noqa: F401

__doc__ = _core.__doc__

# The stage submodules are attributes of the extension; registering them also makes
# `import ssmlab.mamba` and `from ssmlab.s4 import …` work.
for _name in dir(_core):
    _obj = getattr(_core, _name)
    if isinstance(_obj, type(_sys)) and not _name.startswith("_"):
        _sys.modules[__name__ + "." + _name] = _obj
del _name, _obj
