# Shared by the bin/ scripts and .ci/run: where the project is, and a Java 25 runtime to use.

EXPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Prints the first JDK of version 25 or later among: $EXPO_JAVA_HOME, $JAVA_HOME, the machine's Temurin 25, any
# other /usr/lib/jvm entry. (This machine's default java is 17, which cannot run the project.)
expo_java_home() {
  local candidate version
  for candidate in "${EXPO_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] || continue
    version=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$candidate/release" 2>/dev/null || true)
    if [ -n "$version" ] && [ "$version" -ge 25 ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

expo_require_java() {
  if ! JAVA_HOME="$(expo_java_home)"; then
    echo "expo: needs a Java 25 JDK; set EXPO_JAVA_HOME (or JAVA_HOME) to one" >&2
    exit 1
  fi
  export JAVA_HOME
}

# JVM flags of every expo process: native access (DJL, FFM) and no warnings from libraries that still use
# sun.misc.Unsafe. Services add the Vector API (the ExPO kernel) and DJL's offline mode.
EXPO_JVM_FLAGS=(--enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow)
EXPO_SERVICE_JVM_FLAGS=("${EXPO_JVM_FLAGS[@]}" --add-modules jdk.incubator.vector -Dai.djl.offline=true)

# Per-service JVM flags. The extrapolation service keeps its data off the heap (mapped files, one native buffer per
# worker), so a small heap keeps the whole process small whatever the model's size.
# PyTorch (the inference service) gets one intra-op thread per core and no inter-op pool. The inference service's
# CPU kernels check their whole index range on entry, so the Vector API's per-access bound checks are off there
# (C2 keeps them in some compilations of the decode loops, a quarter of a decode step; llama3.java runs the same way).
expo_service_jvm_flags() {
  case "$1" in
    extrapolation-service) echo "-Xmx256m" ;;
    inference-service) echo "-Dai.djl.pytorch.num_threads=$(nproc) -Dai.djl.pytorch.num_interop_threads=1 -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0" ;;
    *) echo "" ;;
  esac
}

# A service's runnable Quarkus fast-jar: each service folder holds its app (and its engine, if it has one).
expo_service_jar() {
  echo "$EXPO_ROOT/$1/app/target/quarkus-app/quarkus-run.jar"
}
