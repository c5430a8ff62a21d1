# Helpers of the rules in workflow/rules/data_study.smk: their inputs and options, and the
# studies' names (which the evaluation rules match too).


# SURREAL's data studies: a share of the training clips, the training split rendered again in
# fewer outfits, or the training and test splits rendered again with lossless frames.
STUDY_RENDERS = "outfits/[0-9]+|lossless"
DATA_STUDIES = f"clips/[0-9]+|{STUDY_RENDERS}"


def study_render_options(wildcards):
    """What a study's renders change: the outfits the clips wear, or lossless frames besides."""
    if wildcards.variant == "lossless":
        return "--lossless"
    return f"--outfits-used {re.fullmatch(r'outfits/([0-9]+)', wildcards.variant)[1]}"


def study_clip_share(wildcards):
    """The share of the training clips a data-study network trains on (the amount study's)."""
    amount = re.fullmatch(r"clips/([0-9]+)", wildcards.study)
    return int(amount[1]) / 100 if amount else 1


def study_renders_split(study, split):
    """Whether a data study renders `split` again: the outfit studies the training split, the
    compression study both the training and the test split."""
    if study == "lossless":
        return True
    return study.startswith("outfits/") and split == config["bodynet"]["samples"]["train_split"]


def data_study_samples(study, split_key):
    """The samples a data study's network reads for bodynet.samples.<split_key>: the study's own
    renders of that split, or the main run's samples (of which the amount study takes a share)."""
    split = config["bodynet"]["samples"][split_key]
    if study_renders_split(study, split):
        return f"results/data_study/{study}/samples/{split}"
    return bodynet_samples(split_key)


def study_samples(split_key):
    """data_study_samples of a train_data_study job."""
    return lambda wildcards: data_study_samples(wildcards.study, split_key)
