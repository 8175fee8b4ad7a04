# CLI tests: each app with its defaults exits 0; each bad input exits 2 with a one-line message
# naming the flag or file; a failed run leaves no output file behind.
set(_cli ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.sh)

# ssm_cli_test(NAME RC REGEX [ARGS...]): ARGS go to cli_test.sh (options, then -- command).
function(ssm_cli_test name rc regex)
  add_test(NAME "cli: ${name}" COMMAND ${_cli} ${rc} ${regex} ${ARGN})
  set_tests_properties("cli: ${name}" PROPERTIES LABELS cli)
endfunction()

set(C $<TARGET_FILE:ssm-continuous>)
set(DZ $<TARGET_FILE:ssm-discretize>)
set(CV $<TARGET_FILE:ssm-conv>)

# Defaults run and pass their cross-checks; --plot writes the image, its .gp and .csv.
ssm_cli_test("ssm-continuous defaults" 0 "PASS" -- ${C})
ssm_cli_test("ssm-discretize defaults" 0 "PASS" -- ${DZ})
ssm_cli_test("ssm-conv defaults" 0 "PASS" -- ${CV})
ssm_cli_test("ssm-continuous --plot --csv --json" 0 "\"checks\"" -- sh -c
  "${C} --plot c.png --csv data.csv --json && test -s c.png && test -s c.gp && test -s c.csv && test -s data.csv")
ssm_cli_test("ssm-conv --plot-terminal" 0 "\\*|#" -- ${CV} --no-timing --plot-terminal --L 300)
ssm_cli_test("--help explains the concept" 0 "convolution" -- ${CV} --help)
ssm_cli_test("--version" 0 "ssmlab" -- ${C} --version)

# Bad flags: exit 2, one line, named.
ssm_cli_test("dt zero" 2 "ssm-continuous: error: --dt must be finite and > 0, got 0" --absent c.png --absent c.csv --absent c.gp -- ${C} --dt 0 --plot c.png)
ssm_cli_test("dt negative" 2 "--dt must be finite and > 0" -- ${CV} --dt -1)
ssm_cli_test("dt nan" 2 "--dt must be finite and > 0" -- ${C} --dt nan)
ssm_cli_test("dt inf" 2 "--dt must be finite and > 0" -- ${C} --dt inf)
ssm_cli_test("step negative" 2 "--step must be finite and > 0" -- ${CV} --step -0.1)
ssm_cli_test("N zero" 2 "--N must be in \\[1, 4096\\], got 0" -- ${CV} --N 0)
ssm_cli_test("N too large" 2 "--N must be in \\[1, 4096\\], got 5000" -- ${C} --model random --N 5000)
ssm_cli_test("N not a number" 2 "ssm-conv: error: .*--N" -- ${CV} --N abc)
ssm_cli_test("L zero" 2 "--L must be in \\[1, 2\\^26\\], got 0" -- ${CV} --L 0)
ssm_cli_test("L too large" 2 "--L must be in \\[1, 2\\^26\\], got 67108865" -- ${CV} --L 67108865)
ssm_cli_test("alpha out of range" 2 "--alpha must be in \\[0, 1\\], got 1.5" -- ${DZ} --alpha 1.5)
ssm_cli_test("unknown method" 2 "unknown method 'rk4' \\(valid: euler, backward-euler, bilinear, zoh, gbt, mamba-zoh\\)" -- ${DZ} --methods euler,rk4)
ssm_cli_test("unknown method (conv)" 2 "unknown method 'foo'" -- ${CV} --method foo)
ssm_cli_test("unknown model" 2 "unknown model 'x' \\(valid: oscillator, random, stiff\\)" -- ${C} --model x)
ssm_cli_test("unknown signal" 2 "unknown signal 'saw'" -- ${C} --signal saw)
ssm_cli_test("unknown flag" 2 "ssm-conv: error: .*--bogus" -- ${CV} --bogus)
ssm_cli_test("bad plot extension" 2 "--plot: 'x.jpg' must end in .png or .svg" --absent x.jpg -- ${CV} --no-timing --plot x.jpg)
ssm_cli_test("plot into a missing directory" 2 "--plot: directory 'nope' does not exist" -- ${C} --plot nope/x.png)
ssm_cli_test("timing-L out of range" 2 "--timing-L must be in" -- ${CV} --timing-L 0)

# Bad signal files: one line naming file, line and column; nothing written.
ssm_cli_test("signal file missing" 2 "cannot open signal file 'missing.csv'" --absent o.png -- ${C} --signal missing.csv --plot o.png)
ssm_cli_test("signal file empty" 2 "signal file 'e.csv' holds no samples" --data "e.csv=" --absent o.png --absent o.csv -- ${CV} --signal e.csv --plot o.png)
ssm_cli_test("signal file non-numeric" 2 "signal file 'b.csv' line 3 column 1: 'x1' is not a number" --data "b.csv=1\\n2\\nx1\\n" --absent o.png --absent o.gp -- ${C} --signal b.csv --plot o.png)
ssm_cli_test("signal file NaN" 2 "signal file 'n.csv' line 2 column 2: value 'NaN' is not finite" --data "n.csv=a,b\\n1,NaN\\n" -- ${CV} --signal n.csv:b)
ssm_cli_test("signal file Inf" 2 "line 3 column 1: value 'inf' is not finite" --data "i.csv=1\\n2\\ninf\\n" -- ${C} --signal i.csv)
ssm_cli_test("signal column missing" 2 "no column named 'z'" --data "h.csv=a,b\\n1,2\\n" -- ${C} --signal h.csv:z)
ssm_cli_test("x0 wrong length" 2 "--x0 needs N = 2 values, got 3" -- ${C} --x0 1,2,3)
ssm_cli_test("dt-min above dt-max" 2 "--dt-min must be < --dt-max" -- ${DZ} --dt-min 0.5 --dt-max 0.1)

# ssm-mamba (stage 7): a quick run passes its checks; bad shapes and values are refused in one line.
set(MB $<TARGET_FILE:ssm-mamba>)
set(_mq --no-timing --precision-L 256 --L 300 --D 20 --tokens 48)
ssm_cli_test("ssm-mamba quick run" 0 "PASS" -- ${MB} ${_mq})
ssm_cli_test("ssm-mamba --plot --csv --json" 0 "\"recall_selective\"" -- sh -c
  "${MB} --no-timing --precision-L 256 --L 300 --D 20 --tokens 48 --plot m.png --csv m.csv --json && test -s m.png && test -s m-scan.png && test -s m.gp && test -s m.csv && test -s m-agreement.csv")
ssm_cli_test("ssm-mamba --help explains selectivity" 0 "filler" -- ${MB} --help)
ssm_cli_test("mamba N zero" 2 "ssm-mamba: error: --N must be in \\[1, 256\\], got 0" --absent m.png -- ${MB} --N 0 --plot m.png)
ssm_cli_test("mamba N too large" 2 "--N must be in \\[1, 256\\], got 300" -- ${MB} --N 300)
ssm_cli_test("mamba D zero" 2 "--D must be in \\[1, 4096\\], got 0" -- ${MB} --D 0)
ssm_cli_test("mamba D too large" 2 "--D must be in \\[1, 4096\\], got 5000" -- ${MB} --D 5000)
ssm_cli_test("mamba L zero" 2 "--L must be in \\[1, 1048576\\], got 0" -- ${MB} --L 0)
ssm_cli_test("mamba A shape mismatch" 2 "--A needs N = 16 values, got 3" -- ${MB} --A -1,-2,-3)
ssm_cli_test("mamba A positive" 2 "--A: value 2 is 0.5, must be < 0" -- ${MB} --N 2 --A -1,0.5)
ssm_cli_test("mamba A zero" 2 "--A: value 1 is 0, must be < 0" -- ${MB} --N 2 --A 0,-1)
ssm_cli_test("mamba A not finite" 2 "--A: 'nan' is not a number" -- ${MB} --N 2 --A nan,-1)
ssm_cli_test("mamba u non-finite" 2 "signal file 'u.csv' line 2 column 1: value 'inf' is not finite" --data "u.csv=1\\ninf\\n3\\n" -- ${MB} --L 3 --u u.csv)
ssm_cli_test("mamba u too short" 2 "--u: 'u.csv' has 3 samples, expected at least L = 10" --data "u.csv=1\\n2\\n3\\n" --absent m.png -- ${MB} --L 10 --u u.csv --plot m.png)
ssm_cli_test("mamba content above N" 2 "--content must be in \\[1, 8\\], got 9" -- ${MB} --content 9)
ssm_cli_test("mamba timing shape" 2 "--timing-shape needs 4 values, got 3" -- ${MB} --timing-shape 1,2,3)
ssm_cli_test("mamba delta-content" 2 "--delta-content must be in \\(0, 10\\], got 0" -- ${MB} --delta-content 0)
