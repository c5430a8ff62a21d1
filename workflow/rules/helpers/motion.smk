# Helpers of the rules in workflow/rules/motion.smk alone: their inputs, options and outputs.


def flow_samples(source, split):
    """Samples of a split carrying flow from `source` (rendered | estimated)."""
    return f"results/bodynet/samples_flow/{source}/{split}"


def input_flow(wildcards):
    """The stored flow a flow-sample set reads: none for the rendered flow (in the clips)."""
    if wildcards.source == "rendered":
        return []
    return f"results/flow/inputs/{wildcards.split}/{config['flow']['as_input']['estimated']}"
