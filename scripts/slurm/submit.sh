#!/bin/bash
# Submit the bids-asl participant level as a Slurm job array (one task per participant of
# BIDS_DIR/participants.tsv) and the group level as a job that starts only when every task
# succeeded (--dependency=afterok; it is cancelled if one fails).
#
#   scripts/slurm/submit.sh BIDS_DIR OUTPUT_DIR [bids-asl participant options...]
#
# Prints the job ids, last two lines "array_job_id=<id>" and "group_job_id=<id>".
# Environment:
#   BIDS_ASL         command that runs bids-asl (default bids-asl), e.g.
#                    BIDS_ASL="apptainer run --cleanenv -B /project $PWD/bids-asl.sif"
#   SBATCH_ARGS      more sbatch options for both jobs, e.g. "--account=abc --partition=short"
#   ARRAY_ARGS       more sbatch options for the array only, e.g. "--mem=4G --cpus-per-task=4"
#   GROUP_ARGS       more sbatch options for the group job only
#   MAX_PARALLEL     at most this many participant tasks at once (the array's %N; default none)
#   SLURM_LOG_DIR    job logs (default OUTPUT_DIR/logs/slurm)
#   BIDS_ASL_WORK    see participant_array.sbatch
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
if [ $# -lt 2 ]; then
    sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 64
fi
bids_dir=$(cd "$1" && pwd -P)
mkdir -p "$2"
output_dir=$(cd "$2" && pwd -P)
shift 2
[ -f "$bids_dir/participants.tsv" ] || {
    echo "submit.sh: no participants.tsv in $bids_dir" >&2; exit 66; }
n=$(awk -F '\t' 'NR == 1 { for (c = 1; c <= NF; c++) if ($c == "participant_id") col = c; next }
                 col && $col != "" { n++ } END { print n + 0 }' "$bids_dir/participants.tsv")
[ "$n" -gt 0 ] || { echo "submit.sh: no participant_id rows in participants.tsv" >&2; exit 66; }

log_dir=${SLURM_LOG_DIR:-$output_dir/logs/slurm}
mkdir -p "$log_dir"
read -r -a common <<< "${SBATCH_ARGS:-}"
read -r -a array_args <<< "${ARRAY_ARGS:-}"
read -r -a group_args <<< "${GROUP_ARGS:-}"
array=1-$n${MAX_PARALLEL:+%$MAX_PARALLEL}

array_id=$(sbatch --parsable ${common[@]+"${common[@]}"} ${array_args[@]+"${array_args[@]}"} --array="$array" \
    --output="$log_dir/participant-%A_%a.out" \
    "$here/participant_array.sbatch" "$bids_dir" "$output_dir" "$@")
array_id=${array_id%%;*}  # --parsable prints "id[;cluster]"
group_id=$(sbatch --parsable ${common[@]+"${common[@]}"} ${group_args[@]+"${group_args[@]}"} \
    --dependency=afterok:"$array_id" --kill-on-invalid-dep=yes \
    --output="$log_dir/group-%j.out" \
    "$here/group.sbatch" "$bids_dir" "$output_dir")
group_id=${group_id%%;*}
echo "submitted participant array $array_id ($n tasks, --array=$array) and group job" \
     "$group_id (afterok:$array_id); logs in $log_dir"
echo "array_job_id=$array_id"
echo "group_job_id=$group_id"
