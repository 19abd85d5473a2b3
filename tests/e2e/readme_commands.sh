#!/usr/bin/env bash
# End to end: the shell commands that README.md documents run as written.
#
# Every ```bash and ```sh block of the README is split into commands (a command ends where `bash -n` accepts the
# text so far without a warning and the line does not end in a backslash; comment lines between commands are
# dropped), and the commands run in README order, each with `bash -c` from a scratch directory laid out like the
# repository:
#   build/   the BUILD_DIR under test             tools/, tests/   the source tree's
#   .cache/, .venv/   the source tree's (MiniLM, transformers), when they exist
#   scripts/ the source tree's scripts, except four stand-ins: setup.sh and build.sh do nothing (the tree is
#            built already), make_corpus.sh writes the KJV excerpt of tests/e2e/fixtures instead of the whole
#            Bible, and run.sh is the real one passed through the SMALL map below.
#   a.txt, b.txt, sentences.txt   the text files the README's examples read, made from that excerpt: a.txt
#            holds its verses as blank-line separated documents (enough of them for bert_prep's default 1%
#            validation split), b.txt the excerpt itself, sentences.txt 40 verses.
# So `scripts/run.sh`, the README's first command, makes a tiny stand-in of the main job's outputs
# (runs/data/kjv, runs/kjv-tiny) in a few seconds instead of 7 minutes, and the commands after it read those.
# Every command is first passed through the SMALL map (fewer steps and batches, a vocabulary that the excerpt
# can fill); it must then exit 0, or with the status EXPECTED_STATUS gives it. SKIP and REQUIRE say which
# commands are not run and why. Failures are collected; the test fails at the end, naming each one. It also checks
# that the README's contents list every section and that its links lead somewhere.
# Usage: readme_commands.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail

# ---- What is run, and how ------------------------------------------------------------------------------------
# SMALL: sed -E expressions applied to every command (and to scripts/run.sh): same commands, small outputs.
SMALL=(
  's/(--steps[ =])[0-9]+/\13 --warmup_steps 1/g'                        # 3 optimizer steps (warm-up: 1 of them)
  's/(--warmup_steps[ =])[0-9]+/\11/g'
  's/(--batch_size[ =])[0-9]+/\18/g'                                    # 8 sequences per batch
  's/(--(calibration_batches|eval_batches|batches)[ =])[0-9]+/\12/g'    # 2 batches
  # ... also where a tool's default would be used: flags given later on the command line still win
  's#(build/bert_train) #\1 --batch_size 8 --eval_batches 2 #g'
  's#(build/bert_quant) #\1 --batch_size 8 --calibration_batches 2 --eval_batches 2 #g'
  's/(--vocab_size[ =])[0-9]+/\1600/g'                                  # the excerpt is too small for 8000
  's/(--validation_fraction[ =])[0-9.]+/\10.2/g'                        # ... and has only 20 documents
  's/OMP_NUM_THREADS=[0-9]+/OMP_NUM_THREADS=1/g'                        # 2 ranks x 1 thread on 2 cores
  's/(mpirun -np )[0-9]+/\12/g'                                         # 2 ranks
)
# SKIP: commands matching the regular expression (grep -E) are not run, for the reason beside it.
SKIP=(
  'scripts/test\.sh'
  'runs the whole test suite, this test included'
  'scripts/(setup|build)\.sh|apt-get|cmake |ninja '
  'installs packages, builds or installs the build: this test runs against a tree built already'
  'scripts/fetch_minilm\.sh|curl |wget |pip install'
  'downloads from the network'
  'scripts/outlier_study\.sh'
  'a long job (about an hour of training and quantization)'
  '--device cuda|cuda_test_|bench_cuda'
  'needs a GPU'
  'srun |-H [^ ]+:[0-9]|RANK='
  'a multi-node or multi-GPU launch'
  'bench_'
  'a benchmark (minutes each)'
  '(^|[[:space:]])\.\.\.([[:space:]]|$)'
  'elided arguments (...): not a complete command'
)
# REQUIRE: commands matching the regular expression run only when the test beside it passes.
have_mpi() { command -v mpirun > /dev/null && grep -q '^BERTFORGE_MPI:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; }
REQUIRE=(
  'minilm'    '[ -f "$source/.cache/minilm/.complete" ]'  'needs all-MiniLM-L6-v2 (scripts/fetch_minilm.sh)'
  '\.venv/'   '[ -x "$source/.venv/bin/python" ]'         'needs .venv with transformers (scripts/setup.sh)'
  'mpirun'    'have_mpi'                                  'needs mpirun and a build with BERTFORGE_MPI'
)
# EXPECTED_STATUS: a command the README shows failing on purpose (regular expression, then its exit status).
EXPECTED_STATUS=()

# What mpirun needs in a container (root) and under the sanitizers (Open MPI's own leaks), as data_parallel.sh.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# transformers reads local directories only: never wait for the Hugging Face Hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# ---- The scratch tree -----------------------------------------------------------------------------------------
tree=$work/tree
mkdir -p "$tree/scripts"
ln -s "$build" "$tree/build"
ln -s "$source/tools" "$tree/tools"
ln -s "$source/tests" "$tree/tests"
for d in .cache .venv; do [ -e "$source/$d" ] && ln -s "$source/$d" "$tree/$d"; done
for f in "$source"/scripts/*; do ln -s "$f" "$tree/scripts/$(basename "$f")"; done
rm "$tree/scripts/"{setup,build,make_corpus,run}.sh
printf '#!/bin/sh\n# stand-in (tests/e2e/readme_commands.sh): the tree is set up and built already\n' |
  tee "$tree/scripts/setup.sh" > "$tree/scripts/build.sh"
excerpt=$source/tests/e2e/fixtures/kjv_excerpt.txt
cat > "$tree/scripts/make_corpus.sh" <<EOF
#!/bin/sh
# stand-in (tests/e2e/readme_commands.sh): the KJV excerpt
mkdir -p "\$(dirname "\$1")" && cp "$excerpt" "\$1"
EOF
sed_args=()
for e in "${SMALL[@]}"; do sed_args+=(-e "$e"); done
sed -E "${sed_args[@]}" "$source/scripts/run.sh" > "$tree/scripts/run.sh"
chmod +x "$tree/scripts/"{setup,build,make_corpus,run}.sh
grep -v '^$' "$excerpt" | sed 's/$/\n/' > "$tree/a.txt"
cp "$excerpt" "$tree/b.txt"
grep -v '^$' "$excerpt" | head -n 40 > "$tree/sentences.txt"

# ---- The README's commands ------------------------------------------------------------------------------------
# Blocks: $work/block-NNN.sh holds block NNN's lines, $work/block-NNN.where the heading it sits under.
awk -v dir="$work" '
  /^```/ && !fence { fence = 1; lang = substr($0, 4); gsub(/[ \t]/, "", lang)
                     if (lang == "bash" || lang == "sh") { n++; file = sprintf("%s/block-%03d", dir, n)
                                                            print heading > (file ".where"); keep = 1 }
                     next }
  /^```/ && fence  { fence = 0; keep = 0; next }
  fence && keep    { print > (file ".sh"); next }
  !fence && /^#+ / { heading = $0 }
' "$source/README.md"

ran=0 skipped=0 failures=()
say_cmd() { tr '\n' ' ' <<<"$1" | sed -E 's/\\ +/ /g; s/ +/ /g; s/ $//'; }
run_command() {  # run_command BLOCK WHERE COMMAND
  local block=$1 where=$2 cmd=$3 code shown reason="" i small status expected=0 start=$SECONDS
  shown=$(say_cmd "$cmd")
  code=$(sed -E 's/(^|[[:space:]])#.*$//' <<<"$cmd")  # the rules look at the command, not its comments
  for ((i = 0; i < ${#SKIP[@]}; i += 2)); do
    grep -qE -- "${SKIP[i]}" <<<"$code" && { reason=${SKIP[i + 1]}; break; }
  done
  for ((i = 0; i < ${#REQUIRE[@]}; i += 3)); do
    [ -z "$reason" ] && grep -qE -- "${REQUIRE[i]}" <<<"$code" && ! eval "${REQUIRE[i + 1]}" && reason=${REQUIRE[i + 2]}
  done
  if [ -n "$reason" ]; then
    echo "skip: block $block ($where): $shown -- $reason"
    skipped=$((skipped + 1))
    return
  fi
  for ((i = 0; i < ${#EXPECTED_STATUS[@]}; i += 2)); do
    grep -qE -- "${EXPECTED_STATUS[i]}" <<<"$code" && expected=${EXPECTED_STATUS[i + 1]}
  done
  small=$(sed -E "${sed_args[@]}" <<<"$cmd")
  echo "run:  block $block ($where): $(say_cmd "$small")"
  (cd "$tree" && timeout 300 bash -o pipefail -c "$small") < /dev/null > "$work/out.log" 2>&1
  status=$?
  ran=$((ran + 1))
  if [ "$status" -eq "$expected" ]; then
    echo "ok:   exit $status after $((SECONDS - start)) s"
  else
    tail -n 25 "$work/out.log"
    echo "FAILED: exit $status (expected $expected) after $((SECONDS - start)) s"
    failures+=("block $block ($where): $shown -> exit $status: $(grep -v '^$' "$work/out.log" | tail -n 1)")
  fi
}

for file in "$work"/block-*.sh; do
  [ -e "$file" ] || continue
  block=$(basename "$file" .sh)
  block=${block#block-}
  where=$(cat "$work/block-$block.where")
  cmd=""
  while IFS= read -r line || [ -n "$line" ]; do
    if [ -z "$cmd" ] && [[ $line =~ ^[[:space:]]*(#|$) ]]; then continue; fi
    cmd+="$line"$'\n'
    # complete: no trailing backslash, and bash parses it without an error or a warning (an open here-document)
    if [[ ! $line =~ \\$ ]] && parse=$(bash -n <<<"$cmd" 2>&1) && [ -z "$parse" ]; then
      run_command "$block" "$where" "$cmd"
      cmd=""
    fi
  done < "$file"
  [ -z "$cmd" ] || failures+=("block $block ($where): an incomplete command at the end: $(say_cmd "$cmd")")
done

# The README's "## Contents" lists every ## and ### section, every #anchor link of the README names a heading
# (anchors as GitHub makes them: lower case, punctuation dropped, spaces to hyphens), and every relative link names
# a file of the source tree.
contents=$(python3 - "$source/README.md" <<'PY'
import os, re, sys
fence, headings = False, []
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("```"):
        fence = not fence
    elif not fence and re.match(r"#{1,6} ", line):
        headings.append(line.rstrip("\n"))
anchor = lambda h: re.sub(r"[^\w\- ]", "", h.lstrip("#").strip().lower()).replace(" ", "-")
anchors = {anchor(h) for h in headings}
text = open(sys.argv[1], encoding="utf-8").read()
toc = re.search(r"^## Contents\n(.*?)\n## ", text, re.S | re.M)
listed = set(re.findall(r"\]\(#([^)]+)\)", toc.group(1))) if toc else set()
for h in headings:
    if re.match(r"#{2,3} ", h) and h != "## Contents" and anchor(h) not in listed:
        print(f"'{h}' is missing from ## Contents")
for a in re.findall(r"\]\(#([^)]+)\)", text):
    if a not in anchors:
        print(f"the link #{a} names no heading")
for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
    if not os.path.exists(os.path.join(os.path.dirname(sys.argv[1]), target)):
        print(f"the link {target} names no file")
PY
)
if [ -n "$contents" ]; then
  failures+=("README.md: $(tr '\n' ';' <<<"$contents")")
else
  echo "ok:   README.md's contents list every section"
fi

echo "README commands: $ran run, $skipped skipped, ${#failures[@]} failed, in $SECONDS s"
[ "$ran" -ge 5 ] || fail "only $ran README commands ran: is the block extraction broken?"
if [ ${#failures[@]} -gt 0 ]; then
  printf 'FAIL: %s\n' "${failures[@]}"
  exit 1
fi
echo "all ok"
