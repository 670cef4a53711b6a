#!/bin/bash
# timevisor sweep as a Slurm job array: task i runs shard i/N into results/shard-i.
#   jobid=$(sbatch --parsable deploy/slurm/sweep-array.sh sweeps/fleet.yaml)
#   sbatch --dependency=afterok:$jobid --wrap "node bin/timevisor.js merge results/shard-* --out results/merged"
# Keep --array=0-(N-1) and N equal (test/cli/deploy.test.ts checks this file).
#SBATCH --job-name=timevisor-sweep
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --output=results/slurm-%A_%a.log
set -euo pipefail
N=8
SWEEP=${1:?usage: sbatch sweep-array.sh SWEEP_FILE}
node bin/timevisor.js sweep "$SWEEP" \
  --out "results/shard-${SLURM_ARRAY_TASK_ID}" \
  --shard "${SLURM_ARRAY_TASK_ID}/${N}" \
  --workers "${SLURM_CPUS_PER_TASK}"
