# Dense optical flow of the synthetic clips by each method, scored against the renderer's
# true flow as it is written; then one table of the methods and a colour-wheel figure.


rule extract_flow:
    input:
        clips=lambda wildcards: split_clips(wildcards.split),
    output:
        flows=directory("results/flow/{split}/{method}"),
        scores="results/flow/{split}/{method}.json",
    params:
        release=lambda wildcards: release_contents(wildcards.split),
        root=lambda wildcards: clips_root(wildcards.split),
        clips=config["flow"]["clips"],
        quality=config["flow"]["jpeg_quality"],
        tracking=tracking("extract_flow"),
        code=code_version("flow"),
    resources:
        runtime=240,
    log:
        "logs/extract_flow/{split}_{method}.log",
    benchmark:
        "logs/benchmarks/extract_flow/{split}_{method}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.flow extract --root {params.root:q} --split {wildcards.split:q} --method {wildcards.method:q} "
        "--clips {params.clips:q} --quality {params.quality:q} --out {output.flows:q} --scores {output.scores:q} "
        "{params.tracking} > {log:q} 2>&1"


rule tabulate_flow:
    input:
        scores=expand("results/flow/{split}/{method}.json", split=config["flow"]["split"], method=config["flow"]["methods"]),
        flows=expand("results/flow/{split}/{method}", split=config["flow"]["split"], method=config["flow"]["methods"]),
    output:
        table=report(
            "results/flow_table.csv",
            caption="../report/flow_table.rst",
            category="3. Optical flow",
            labels={"figure": "table"},
        ),
        figure=report(
            "results/flow/flow_colours.png",
            caption="../report/flow_colours.rst",
            category="3. Optical flow",
            labels={"figure": "colour wheel"},
        ),
    params:
        scores=lambda wildcards, input: keyed("--score", zip(config["flow"]["methods"], input.scores)),
        split=config["flow"]["split"],
        root=lambda wildcards: clips_root(config["flow"]["split"]),
        min_fps=config["flow"]["min_fps"],
        tracking=tracking("tabulate_flow"),
        code=code_version("flow"),
    log:
        "logs/tabulate_flow/tabulate_flow.log",
    benchmark:
        "logs/benchmarks/tabulate_flow/tabulate_flow.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.flow table {params.scores} --root {params.root:q} --split {params.split:q} "
        "--min-fps {params.min_fps:q} --out {output.table:q} --figure {output.figure:q} {params.tracking} > {log:q} 2>&1"
