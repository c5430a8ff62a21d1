# Where the rules find clips, shared by every rule that reads them.

# The clips rules read: the pipeline's renders, or the SURREAL release read in place (each
# split it holds, every run; a split it lacks is rendered).
RELEASE = Path(config["data"]["surreal_root"]) if config["data"]["source"] == "surreal" else None


def from_release(split):
    return RELEASE is not None and (RELEASE / "cmu" / split).is_dir()


def clips_root(split):
    return str(RELEASE) if from_release(split) else "results/surreal"


def split_clips(split):
    """What a job reading a split's clips depends on: the release's split folder, or the
    manifests of the split's renders."""
    if from_release(split):
        return [str(RELEASE / "cmu" / split)]
    return expand("results/surreal/{split}_run{run}.csv", split=split, run=RUNS)


def release_contents(split):
    """The state of the release's split folder a job reads in place (none for renders, whose
    manifests are the job's inputs): as the job's param, a changed file of the release reruns it."""
    return [folder_contents(path) for path in split_clips(split) if from_release(split)]
