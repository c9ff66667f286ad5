# dlab's start-up hook (every image): size every framework's thread pool to the CPUs this
# container may use, unless the user chose already, so that a container limited to 1 CPU on a
# 32-core server does not start 32 threads per framework. Sourced by start.sh: what it exports
# reaches the command (Jupyter, its kernels, docker run's command).
# shellcheck shell=bash

# CPUs this container may use: the smaller of its CPU set and its CFS quota (docker --cpus),
# rounded up. cgroup v2 (cpu.max) and v1 (cpu.cfs_quota_us) are both read.
cpu_limit() {
  local n quota period
  # nproc alone would answer OMP_NUM_THREADS back to us: ask it for the CPU set only.
  n=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
  if [ -r /sys/fs/cgroup/cpu.max ]; then
    read -r quota period </sys/fs/cgroup/cpu.max
  elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
    period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
  fi
  if [[ "$quota" =~ ^[0-9]+$ ]] && [ "$quota" -gt 0 ] && [ "${period:-0}" -gt 0 ]; then
    local q=$(( (quota + period - 1) / period ))
    [ "$q" -lt "$n" ] && n=$q
  fi
  echo "$n"
}

export DLAB_CPUS
DLAB_CPUS=$(cpu_limit)
# A user's own OMP_NUM_THREADS is the default for the other pools too (PyTorch takes MKL's
# count over OMP's when the two differ).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$DLAB_CPUS}           # PyTorch, oneDNN, OpenMP code
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$OMP_NUM_THREADS} # NumPy, SciPy
export MKL_NUM_THREADS=${MKL_NUM_THREADS:-$OMP_NUM_THREADS}
# TensorFlow also sizes its pools by the cgroup quota itself; these cover graph-mode sessions.
export TF_NUM_INTRAOP_THREADS=${TF_NUM_INTRAOP_THREADS:-$OMP_NUM_THREADS}
export TF_NUM_INTEROP_THREADS=${TF_NUM_INTEROP_THREADS:-$(( DLAB_CPUS < 2 ? 1 : 2 ))}
# JAX/XLA: its compute (Eigen) pool; XLA sizes its other pools by CPU affinity, not quota.
if [[ "${XLA_FLAGS:-}" != *intra_op_parallelism_threads* ]]; then
  eigen=false; [ "$DLAB_CPUS" -gt 1 ] && eigen=true
  export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_multi_thread_eigen=$eigen intra_op_parallelism_threads=$DLAB_CPUS"
  unset eigen
fi
