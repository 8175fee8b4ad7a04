#!/usr/bin/env python3
"""run_notebook.py — execute a lab notebook top to bottom, as the test suite does.

  run_notebook.py NOTEBOOK                the solved notebook, strictly: any error or any check
                                          that does not pass (SSMLAB_STRICT=1) fails the run,
                                          and every check cell must print its ✓
  run_notebook.py --student NOTEBOOK      its student version (made in memory by
                                          make_student.py): it must run to the end without an
                                          error, every check cell saying "not attempted yet"
  --save OUT.ipynb                        also write the executed notebook (to look at it)

The kernel is this interpreter (Debian's /usr/bin/python3 in the tests) running ipykernel, in
the notebooks/ folder so that `import labkit` works; ssmlab comes from PYTHONPATH (or labkit's
search). Exit 0 when the run is as expected, 1 otherwise, with the reason on stderr.
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_student  # noqa: E402
from labkit import NOT_ATTEMPTED, PASS, FAIL  # noqa: E402


def use_this_python(tmp):
    """Makes the kernel 'ssmlab-python' run this very interpreter: the installed 'python3'
    kernelspec may name another Python (a pyenv or conda one first on PATH) without ssmlab's
    ABI or packages. Jupyter finds it through JUPYTER_PATH."""
    d = os.path.join(tmp, "kernels", "ssmlab-python")
    os.makedirs(d)
    with open(os.path.join(d, "kernel.json"), "w") as f:
        json.dump({"argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher",
                            "-f", "{connection_file}"],
                   "display_name": "ssmlab (Python %d.%d)" % sys.version_info[:2],
                   "language": "python"}, f)
    os.environ["JUPYTER_PATH"] = tmp + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    # Connection files in the temporary folder too: a CI machine's home may not be writable.
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(tmp, "runtime")
    # IPython's history database too: kernels of tests running side by side would otherwise
    # share one SQLite file in ~/.ipython and can trip over its lock.
    os.environ["IPYTHONDIR"] = os.path.join(tmp, "ipython")
    return "ssmlab-python"


def text_of(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append("".join(o.get("text", "")))
        elif o.get("output_type") == "error":
            out.append("%s: %s" % (o.get("ename"), o.get("evalue")))
    return "".join(out)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("--student", action="store_true")
    ap.add_argument("--save", metavar="OUT.ipynb")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per cell (default 120)")
    a = ap.parse_args(argv)

    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    name = os.path.basename(a.notebook)
    nb = make_student.load(a.notebook)
    if a.student:
        nb = make_student.student_version(nb)
        os.environ.pop("SSMLAB_STRICT", None)
    else:
        os.environ["SSMLAB_STRICT"] = "1"
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    version = "student" if a.student else "solved"
    nb = nbformat.reads(json.dumps(nb), as_version=4)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # The kernel talks over Unix sockets in our own temporary folder, not TCP ports: with
        # TCP, jupyter_client picks free ports, releases them and the kernel binds them later,
        # so kernels started side by side (ctest -j2, or other programs on the machine) can
        # take the same port ("ZMQError: Address already in use", seen in CI).
        km = KernelManager(kernel_name=use_this_python(tmp), transport="ipc",
                           ip=os.path.join(tmp, "kernel"))
        # startup_timeout: a kernel can take long to start while the whole suite loads both cores.
        client = NotebookClient(nb, km=km, timeout=a.timeout, startup_timeout=180,
                                resources={"metadata": {"path": HERE}})
        error = None
        try:
            client.execute()
        except CellExecutionError as e:
            error = str(e)
    seconds = time.perf_counter() - t0
    if a.save:
        with open(a.save, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
    if error:
        error = re.sub(r"\x1b\[[0-9;]*m", "", error)  # IPython's colours, unreadable in a log
        print("run_notebook: %s (%s) stopped on an error:\n%s" % (name, version, error), file=sys.stderr)
        return 1

    checks = [c for c in nb.cells if "check" in c.get("metadata", {}).get("tags", [])]
    bad = []
    for c in checks:
        out = text_of(c)
        if a.student and (NOT_ATTEMPTED not in out or FAIL in out):
            bad.append("a check cell of the empty exercise should say '%s', it printed: %r"
                       % (NOT_ATTEMPTED, out.strip()))
        if not a.student and PASS not in out:
            bad.append("a check cell printed no %s: %r" % (PASS, out.strip()))
    if not checks:
        bad.append("no check cells")
    for b in bad:
        print("run_notebook: %s (%s): %s" % (name, version, b), file=sys.stderr)
    if bad:
        return 1
    print("run_notebook: %s (%s): %d cells ran, %d checks %s, %.1f s"
          % (name, version, len(nb.cells), len(checks),
             "say 'not attempted yet'" if a.student else "pass", seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
