"""The end-of-run summary record and the lines printed for people."""


def reached(config, record: dict) -> bool:
    """Whether an evaluation ``record`` reaches the run's target: ``--target-accuracy`` (accuracy at least)
    and ``--target-rmse`` (ratings: test RMSE at most), each when given, both when both are."""
    if config.target_accuracy is None and config.target_rmse is None:
        return False
    accuracy_ok = config.target_accuracy is None or record["accuracy"] >= config.target_accuracy
    rmse_ok = config.target_rmse is None or record.get("rmse", float("inf")) <= config.target_rmse
    return accuracy_ok and rmse_ok


def summarize(config, world_size, last, wall, reached_at, stats) -> dict:
    """The ``event: "summary"`` fields; per-rank statistics come from an all-gather."""
    sent = [s["bytes_sent"] for s in stats]
    waited = [s["wait_s"] for s in stats]
    progressed = [s["progress_s"] for s in stats]
    summary = {
        "world_size": world_size,
        "dataset": config.dataset,
        "model": config.model,
        "epochs": last["epoch"] if last else 0,
        "steps": last["step"] if last else 0,
        "final_accuracy": last["accuracy"] if last else None,
        "final_loss": last["loss"] if last else None,
        "final_test_loss": last["test_loss"] if last else None,
        "wall_s": wall,
        "bytes_sent": sum(sent) / len(sent),
        "comm_wait_s": sum(waited) / len(waited),
        "bytes_sent_per_rank": sent,
        "comm_wait_s_per_rank": waited,
        "comm_progress_s": sum(progressed) / len(progressed),
        "target_accuracy": config.target_accuracy,
        "time_to_accuracy_s": reached_at,
    }
    if config.target_rmse is not None:
        summary["target_rmse"] = config.target_rmse
    summary["steps_per_rank"] = [s["steps"] for s in stats]
    for key in ("staleness", "step_lag", "delivery", "messages_dropped", "syncs", "gossips", "averages"):
        if key in stats[0]:  # algorithm-specific statistics, one value per rank
            summary[f"{key}_per_rank"] = [s.get(key) for s in stats]
    if last and "rmse" in last:
        summary["final_rmse"] = last["rmse"]
    return summary


def format_epoch(record: dict, epochs: int) -> str:
    extra = f"  rmse {record['rmse']:.4f}" if "rmse" in record else ""
    if "epsilon_spent" in record:
        extra += f"  epsilon {record['epsilon_spent']:.3f}"
    return (f"epoch {record['epoch']:>3}/{epochs}  train loss {record['loss']:.4f}  "
            f"test loss {record['test_loss']:.4f}  test accuracy {record['accuracy']:.4f}{extra}  "
            f"({record['wall_s']:.1f} s)")


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def format_summary(summary: dict) -> str:
    wall = summary["wall_s"]
    wait = summary["comm_wait_s"]
    lines = [
        f"summary: {summary['world_size']} ranks, {summary['epochs']} epochs, {summary['steps']} steps per rank",
        f"  final test accuracy   {summary['final_accuracy']:.4f}",
        f"  wall time             {wall:.2f} s",
        f"  bytes sent per rank   {_megabytes(summary['bytes_sent'])}",
        f"  blocked in comm       {wait:.3f} s per rank ({100 * wait / wall if wall else 0:.0f}% of wall time)",
    ]
    for rank, reason in summary.get("lost", {}).items():  # master-worker: what the servers saw
        lines.append(f"  lost worker rank {rank} at {summary['lost_at_s'][rank]:.2f} s: {reason}")
    if "node_accuracy_mean" in summary:  # the ranks' own models before the final average
        lines.append(f"  per-node accuracy     {summary['node_accuracy_mean']:.4f} "
                     f"+- {summary['node_accuracy_std']:.4f} "
                     f"(min {summary['node_accuracy_min']:.4f}, max {summary['node_accuracy_max']:.4f}; "
                     f"{len(summary['node_accuracy'])} nodes' own models before the final average)")
    if summary.get("departed"):
        lines.append(f"  left early: rank(s) {', '.join(map(str, summary['departed']))}")
    if "epsilon_spent" in summary:
        lines.append(f"  privacy ({summary['dp']})    epsilon {summary['epsilon_spent']:.4f} at delta "
                     f"{summary['delta']:g} ({summary['accountant']}, {summary['dp_guarantee']}), noise multiplier "
                     f"{summary['noise_multiplier']:.4f}, sample rate {summary['sample_rate']:.4g}")
    if summary["target_accuracy"] is not None or "target_rmse" in summary:
        at = summary["time_to_accuracy_s"]
        when = f"{at:.2f} s" if at is not None else "not reached"
        target = (f"{summary['target_accuracy']:.3f}" if summary["target_accuracy"] is not None else "") + \
            (f" rmse {summary['target_rmse']:.3f}" if "target_rmse" in summary else "")
        lines.append(f"  time to {target.strip():<13} {when}")
    return "\n".join(lines)
