#!/usr/bin/env bash
# The installed ssmlab, as a user outside the project sees it. Each mode installs into a fresh
# temporary prefix, then MOVES that prefix elsewhere before using it: anything that still works
# found nothing through an absolute path of the build or source tree.
#   install_test.sh cmake  BUILD_DIR SOURCE_DIR           find_package(ssmlab) + pkg-config ssmlab
#   install_test.sh python BUILD_DIR SOURCE_DIR PYTHON SITE   import ssmlab from <prefix>/SITE
#   install_test.sh pip    BUILD_DIR SOURCE_DIR PYTHON    pip install --no-build-isolation --prefix
set -euo pipefail
mode=$1 build=$2 src=$3
work=$(mktemp -d /tmp/ssmlab-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
want() {  # want REGEX FILE: the file's text matches
  grep -Eq -- "$1" "$2" || { echo "--- $2:"; cat "$2"; fail "no match for /$1/ in $2"; }
}
install_moved() {  # cmake --install into $work/prefix, then mv it to $work/moved
  cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "cmake --install failed"; }
  mv "$work/prefix" "$work/moved"
}
no_tree_paths() {  # no installed text file under $1 names the source or build tree
  local hits
  hits=$(grep -rIl -e "$(realpath "$src")" -e "$(realpath "$build")" "$@" || true)
  [ -z "$hits" ] || fail "installed files name the source or build tree: $hits"
}
check_module() {  # python3 -m ssmlab from site-packages folder $1: the installed copy, passing
  PYTHONPATH=$1 "$py" -m ssmlab >run.txt || { cat run.txt; fail "python3 -m ssmlab exited non-zero"; }
  want "^ssmlab .*\($1/ssmlab\)" run.txt   # the installed copy, not the build tree's
  want ': PASS$' run.txt
}
cd "$work"

case "$mode" in
  cmake)
    install_moved
    p=$work/moved
    for f in include/ssm/selective.hpp lib/libssm_core.a lib/cmake/ssmlab/ssmlabConfig.cmake \
             lib/cmake/ssmlab/ssmlabConfigVersion.cmake lib/cmake/ssmlab/ssmlabTargets.cmake \
             lib/pkgconfig/ssmlab.pc bin/ssm-mamba; do
      [ -e "$p/$f" ] || fail "$f was not installed"
    done
    no_tree_paths "$p/lib/cmake" "$p/lib/pkgconfig" "$p/include"
    # find_package(ssmlab REQUIRED) and target ssm::core, from the example's own CMakeLists.txt.
    cmake -S "$src/examples/consumer" -B consumer -DCMAKE_PREFIX_PATH="$p" >cfg.log 2>&1 ||
      { cat cfg.log; fail "configuring examples/consumer with find_package(ssmlab) failed"; }
    cmake --build consumer >build.log 2>&1 || { cat build.log; fail "building examples/consumer failed"; }
    consumer/consumer >run.txt || { cat run.txt; fail "examples/consumer (CMake) exited non-zero"; }
    want 'max \|diff\| = .*: PASS' run.txt
    echo "find_package: $(cat run.txt)"
    # The same program through pkg-config.
    export PKG_CONFIG_PATH=$p/lib/pkgconfig
    [ "$(pkg-config --modversion ssmlab)" = "$(sed -n 's/^Version: //p' "$p/lib/pkgconfig/ssmlab.pc")" ] ||
      fail "pkg-config --modversion ssmlab"
    # shellcheck disable=SC2046  # pkg-config's output is a list of flags
    c++ "$src/examples/consumer/main.cpp" -o pc-consumer $(pkg-config --cflags --libs ssmlab) 2>pc.log ||
      { cat pc.log; fail "c++ main.cpp \$(pkg-config --cflags --libs ssmlab) failed"; }
    ./pc-consumer >run-pc.txt || { cat run-pc.txt; fail "examples/consumer (pkg-config) exited non-zero"; }
    want 'max \|diff\| = .*: PASS' run-pc.txt
    echo "pkg-config:   $(cat run-pc.txt)"
    ;;
  python)
    py=$4 site=$5
    install_moved
    sp=$work/moved/$site
    [ -d "$sp/ssmlab" ] || fail "no ssmlab package in <prefix>/$site"
    no_tree_paths "$sp"
    PYTHONPATH=$sp "$py" -m ssmlab --version >version.txt
    want '^ssmlab [0-9]+\.[0-9]+\.[0-9]+$' version.txt
    check_module "$sp"
    PYTHONPATH=$sp "$py" -c 'import ssmlab.mamba, ssmlab.s4, ssmlab.hippo, ssmlab as s; assert s.mamba is ssmlab.mamba'
    cat version.txt run.txt
    ;;
  pip)
    py=$4
    # pip runs setup.py, which builds the module with CMake: here in the suite's own build tree
    # (SSMLAB_CMAKE_BUILD_DIR, already built), so the test does not compile everything twice.
    SSMLAB_CMAKE_BUILD_DIR=$build "$py" -m pip install --no-build-isolation --no-deps --no-index --prefix "$work/prefix" "$src" \
      >pip.log 2>&1 || { tail -n 40 pip.log; fail "pip install --no-build-isolation failed"; }
    mv "$work/prefix" "$work/moved"
    mapfile -t found < <(find "$work/moved" -path '*-packages/ssmlab/__init__.py')
    [ ${#found[@]} = 1 ] || fail "pip installed ${#found[@]} ssmlab packages under the prefix: ${found[*]}"
    sp=$(dirname "$(dirname "${found[0]}")")
    check_module "$sp"
    echo "pip installed into <prefix>/${sp#"$work/moved/"}"; cat run.txt
    ;;
  *) echo "install_test.sh: unknown mode '$mode'" >&2; exit 99 ;;
esac
