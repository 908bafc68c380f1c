# deps.sh: sourced by scripts/run and scripts/test. Installs the Debian
# packages specplan builds against, when they are missing.
#
# As root, or with password-less sudo, it runs non-interactive apt-get;
# otherwise it prints the one apt-get line to run and stops.

SPECPLAN_PACKAGES=(
  build-essential cmake pkg-config git ccache   # toolchain; ccache speeds rebuilds
  libsqlite3-dev                                 # traces/: the trace store
  libeigen3-dev                                  # engine/ CPU reference, simulator/
  libgtest-dev libgmock-dev libbenchmark-dev     # tests/, bench/
  libtomlplusplus-dev                            # scenarios/
  nlohmann-json3-dev                             # JSON Lines, JSON results
  libcli11-dev                                   # the specplan command line
  libpcre2-dev                                   # engine/: the tokenizer's pre-tokenizer regex
  libcairo2-dev                                  # simulator/: sweep --plot's PNGs, drawn without a window
  libimgui-dev libglfw3-dev libstb-dev           # gui/: Dear ImGui (+ GLFW/OpenGL3 backends), GLFW, PNG export
  libgl-dev fonts-dejavu-core                    # gui/: OpenGL headers; the dashboard's font
  xvfb xauth libgl1-mesa-dri libglx-mesa0        # tests/: the headless dashboard test (Xvfb + Mesa's software GL)
  clang-14 libclang-rt-14-dev                    # scripts/test's clang build: UBSan float-cast-overflow, libFuzzer
)

deps_install() {
  local missing=()
  for p in "${SPECPLAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo="sudo"
    else
      echo "specplan: missing packages; run this, then try again:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
  fi
  echo "specplan: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
