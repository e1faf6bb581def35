"""`mn --custom topologies/h1h7.py --topo h1h7 --controller remote,ip=127.0.0.1,port=6653`

Mininet runs this file with exec(), so __file__ is unknown: the file finds its folder from
its own code object, to import the builder and read the spec beside it.
"""

import inspect
import os
import sys

_here = os.path.dirname(os.path.abspath(inspect.currentframe().f_code.co_filename))
sys.path.insert(0, os.path.dirname(_here))

from topologies.build import LBRemoteController, SpecTopo  # noqa: E402
from controller.files import load_spec  # noqa: E402

# `--controller remote` gets the probe that survives the controller's binary hello
controllers = {"remote": LBRemoteController}
topos = {"h1h7": lambda: SpecTopo(load_spec(os.path.join(_here, "h1h7.json")))}
