#!/usr/bin/env python3
"""make_student.py — the student version of each lab, generated from the solved notebook.

Only the solved notebooks (notebooks/NN-name.ipynb) are kept by hand; the student versions are
made from them by this script, so the two can never drift apart. The solved source marks:

  * code cells tagged "exercise": the lines between `# BEGIN SOLUTION` and `# END SOLUTION` are
    replaced by `# YOUR CODE HERE (about n lines)` and `raise NotImplementedError(...)` at the
    same indentation, so the function still defines and its check cell reports "not attempted
    yet" instead of crashing;
  * markdown cells tagged "answer": the teacher's answers to the questions, replaced by a
    prompt for the student's own;
  * code cells tagged "check": left as they are (they call labkit's checks).
Outputs and execution counts are cleared. The handout folder gets the student notebooks, the
lab sheets (NN-name.md) and the labkit package the notebooks import.

  make_student.py OUTDIR            write the handout to OUTDIR (e.g. out/labs)
  make_student.py --check           validate the solved sources (markers balanced, every
                                    exercise followed by a check, no outputs saved, a lab sheet
                                    beside each notebook); exit 1 with the problems listed
"""
import copy
import glob
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
ANSWER_PROMPT = "**Your answers.** *(Write them here: double-click to edit.)*"


def solved_notebooks():
    """The hand-kept sources, in walk order: notebooks/NN-*.ipynb."""
    return sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]-*.ipynb")))


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dump(nb):
    # The layout Jupyter itself writes (indent 1, sorted keys), so a save in Jupyter is a
    # small diff.
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def source(cell):
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def set_source(cell, text):
    lines = text.split("\n")
    cell["source"] = [l + "\n" for l in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def strip_solution(code, exercise):
    """Replaces each BEGIN/END SOLUTION block; raises ValueError when markers are unbalanced."""
    out, inside, indent, n = [], False, "", 0
    for line in code.split("\n"):
        m = BEGIN.match(line)
        if m:
            if inside:
                raise ValueError("nested '# BEGIN SOLUTION'")
            inside, indent, n = True, m.group(1), 0
            continue
        if END.match(line):
            if not inside:
                raise ValueError("'# END SOLUTION' without BEGIN")
            inside = False
            out.append("%s# YOUR CODE HERE (about %d line%s)" % (indent, n, "" if n == 1 else "s"))
            out.append('%sraise NotImplementedError("%s")' % (indent, exercise))
            continue
        if inside:
            n += bool(line.strip()) and not line.strip().startswith("#")
        else:
            out.append(line)
    if inside:
        raise ValueError("'# BEGIN SOLUTION' without END")
    return "\n".join(out)


def exercise_name(code):
    m = re.search(r"^def (\w+)\(", code, re.M)
    return "exercise: write the body of %s()" % m.group(1) if m else "exercise"


def student_version(nb):
    """The student notebook of a solved one (a new object; nb is left untouched)."""
    st = copy.deepcopy(nb)
    for cell in st["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if "exercise" in tags(cell):
                code = source(cell)
                set_source(cell, strip_solution(code, exercise_name(code)))
        elif "answer" in tags(cell):
            set_source(cell, ANSWER_PROMPT)
    st["metadata"]["ssmlab"] = {"version": "student",
                                "generated_by": "notebooks/make_student.py, from the solved notebook"}
    return st


def problems(path):
    """What is wrong with a solved source (empty when it is fine)."""
    out, nb = [], load(path)
    name = os.path.basename(path)
    cells = nb["cells"]
    n_ex = 0
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
            out.append("%s: cell %d has saved outputs (clear them: the source is kept clean)" % (name, i))
        if "exercise" in tags(cell):
            n_ex += 1
            code = source(cell)
            try:
                stripped = strip_solution(code, "x")
                if stripped == code:
                    out.append("%s: exercise cell %d has no '# BEGIN SOLUTION' block" % (name, i))
            except ValueError as e:
                out.append("%s: exercise cell %d: %s" % (name, i, e))
            nxt = next((c for c in cells[i + 1:] if c["cell_type"] == "code"), None)
            if nxt is None or "check" not in tags(nxt):
                out.append("%s: exercise cell %d is not followed by a code cell tagged 'check'" % (name, i))
        elif "BEGIN SOLUTION" in source(cell):
            out.append("%s: cell %d has a solution block but no 'exercise' tag" % (name, i))
    if n_ex == 0:
        out.append("%s: no exercise cells (tag them 'exercise')" % name)
    if not os.path.exists(path[: -len(".ipynb")] + ".md"):
        out.append("%s: no lab sheet %s" % (name, os.path.basename(path[: -len(".ipynb")] + ".md")))
    return out


def write_handout(outdir):
    if os.path.realpath(outdir) == os.path.realpath(HERE):
        raise SystemExit("make_student: error: OUTDIR must not be notebooks/ itself (it would "
                         "overwrite the solved sources)")
    os.makedirs(outdir, exist_ok=True)
    for path in solved_notebooks():
        base = os.path.basename(path)
        with open(os.path.join(outdir, base), "w", encoding="utf-8") as f:
            f.write(dump(student_version(load(path))))
        sheet = path[: -len(".ipynb")] + ".md"
        if os.path.exists(sheet):
            shutil.copy(sheet, outdir)
        print("student version: %s" % os.path.join(outdir, base))
    dst = os.path.join(outdir, "labkit")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(os.path.join(HERE, "labkit"), dst,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def main(argv):
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[-1])
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] == "--check":
        found = [p for path in solved_notebooks() for p in problems(path)]
        for p in found:
            print("make_student: " + p, file=sys.stderr)
        n = len(solved_notebooks())
        print("make_student: %d solved notebooks, %d problems" % (n, len(found)))
        return 1 if found or n == 0 else 0
    write_handout(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
