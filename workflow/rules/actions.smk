# Actions from synthetic video: clips of named motions rendered from synchronised cameras,
# their optical flow by each method, LTC networks on RGB and flow at two temporal extents
# (Varol, Laptev & Schmid, "Long-term Temporal Convolutions for Action Recognition", 2018), and
# the view study of Varol's thesis (2019, chapter 6); then the tables.


rule render_action_clips:
    input:
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        backgrounds="resources/backgrounds/{split}",
    output:
        clips=directory("results/actions/cmu/{split}"),
        manifest="results/actions/{split}.csv",
    params:
        root=output_folder("manifest"),
        models=body_model_options("--model"),
        options=lambda wildcards: action_dataset_options(wildcards.split),
        seed=config["seed"],
        tracking=tracking("render_action_clips"),
        code=code_version("actions"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        "logs/render_action_clips/{split}.log",
    benchmark:
        "logs/benchmarks/render_action_clips/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.actions render --split {wildcards.split:q} {params.models} --backgrounds {input.backgrounds:q} "
        "{params.options} --seed {params.seed:q} --root {params.root:q} --manifest {output.manifest:q} "
        "{params.tracking} > {log:q} 2>&1"


rule extract_action_flow:
    input:
        clips="results/actions/cmu/{split}",
    output:
        flows=directory("results/actions/flow/{split}/{method}"),
        scores="results/actions/flow/{split}/{method}.json",
    params:
        root=input_folder("clips", levels=2),
        quality=config["flow"]["jpeg_quality"],
        tracking=tracking("extract_action_flow"),
        code=code_version("flow"),
    resources:
        runtime=120,
    log:
        "logs/extract_action_flow/{split}_{method}.log",
    benchmark:
        "logs/benchmarks/extract_action_flow/{split}_{method}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.flow extract --root {params.root:q} --split {wildcards.split:q} --method {wildcards.method:q} "
        "--clips 0 --quality {params.quality:q} --out {output.flows:q} --scores {output.scores:q} "
        "{params.tracking} > {log:q} 2>&1"


rule train_ltc:
    input:
        unpack(ltc_inputs),
    output:
        model="results/actions/{study}/{row}/model.pt",
        history="results/actions/{study}/{row}/history.csv",
        clips="results/actions/{study}/{row}/clips.csv",
        videos="results/actions/{study}/{row}/videos.csv",
        summary="results/actions/{study}/{row}/summary.json",
    wildcard_constraints:
        study="ltc|views",
        # a fusion's folder is fuse_ltc's: two networks' test scores averaged, no network trained
        row="(?!fusion_)[^/]+",
    params:
        root=input_folder("train_manifest"),
        out=output_folder("model"),
        options=ltc_options,
        seed=config["seed"],
        tracking=tracking("train_ltc"),
        code=code_version("actions"),
    threads: config["actions"]["ltc"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    log:
        "logs/train_ltc/{study}/{row}.log",
    benchmark:
        "logs/benchmarks/train_ltc/{study}/{row}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.actions train --root {params.root:q} --train-manifest {input.train_manifest:q} "
        "--test-manifest {input.test_manifest:q} {params.options} --seed {params.seed:q} --threads {threads} "
        "--out {params.out:q} {params.tracking} > {log:q} 2>&1"


rule fuse_ltc:
    input:
        rgb="results/actions/ltc/rgb_{extent}/clips.csv",
        flow=f"results/actions/ltc/{config['actions']['ltc']['fusion_flow']}_{{extent}}/clips.csv",
    output:
        clips="results/actions/ltc/fusion_{extent}/clips.csv",
        videos="results/actions/ltc/fusion_{extent}/videos.csv",
        summary="results/actions/ltc/fusion_{extent}/summary.json",
    params:
        out=output_folder("clips"),
        tracking=tracking("fuse_ltc"),
        code=code_version("actions"),
    log:
        "logs/fuse_ltc/{extent}.log",
    benchmark:
        "logs/benchmarks/fuse_ltc/{extent}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.actions fuse --clips {input.rgb:q} --clips {input.flow:q} "
        "--out {params.out:q} {params.tracking} > {log:q} 2>&1"


rule tabulate_ltc:
    input:
        videos=[f"results/actions/ltc/{row}/videos.csv" for row in ltc_networks()],
        train_manifest="results/actions/train.csv",
        scores=expand("results/actions/flow/test/{method}.json", method=action_flow_methods()),
    output:
        table=report(
            "results/ltc_table.csv",
            caption="../report/ltc_table.rst",
            category="7. Actions",
            labels={"figure": "LTC table"},
        ),
        orderings="results/ltc_table_orderings.csv",
        quality="results/ltc_flow_quality.csv",
        quality_orderings="results/ltc_flow_quality_orderings.csv",
        verdicts="results/ltc_table.verdicts.json",
        figure=report(
            "results/actions/ltc_flow_quality.png",
            caption="../report/ltc_flow_quality.rst",
            category="7. Actions",
            labels={"figure": "flow quality and accuracy"},
        ),
    params:
        rows=lambda wildcards, input: keyed("--row", zip(ltc_networks(), folders(input.videos))),
        extents=keyed("--extent", config["actions"]["ltc"]["extents"].items()),
        scores=lambda wildcards, input: keyed("--score", zip(action_flow_methods(), input.scores)),
        quality_extent=config["actions"]["ltc"]["quality_extent"],
        seed=config["seed"],
        tracking=tracking("tabulate_ltc"),
        code=code_version("actions"),
    log:
        "logs/tabulate_ltc/tabulate_ltc.log",
    benchmark:
        "logs/benchmarks/tabulate_ltc/tabulate_ltc.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.actions table {params.rows} {params.extents} --train-manifest {input.train_manifest:q} "
        "{params.scores} --quality-extent {params.quality_extent:q} --seed {params.seed:q} --out {output.table:q} "
        "--quality {output.quality:q} --figure {output.figure:q} {params.tracking} > {log:q} 2>&1"


rule tabulate_view_invariance:
    input:
        videos=expand("results/actions/views/{row}/videos.csv", row=config["actions"]["ltc"]["views"]["rows"]),
        train_manifest="results/actions/train.csv",
    output:
        table=report(
            "results/view_invariance.csv",
            caption="../report/view_invariance.rst",
            category="7. Actions",
            labels={"figure": "view invariance"},
        ),
        orderings="results/view_invariance_orderings.csv",
    params:
        rows=lambda wildcards, input: keyed("--row", zip(config["actions"]["ltc"]["views"]["rows"], folders(input.videos))),
        seed=config["seed"],
        tracking=tracking("tabulate_view_invariance"),
        code=code_version("actions"),
    log:
        "logs/tabulate_view_invariance/tabulate_view_invariance.log",
    benchmark:
        "logs/benchmarks/tabulate_view_invariance/tabulate_view_invariance.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.actions views-table {params.rows} --train-manifest {input.train_manifest:q} "
        "--seed {params.seed:q} --out {output.table:q} {params.tracking} > {log:q} 2>&1"


rule plot_view_embeddings:
    input:
        models=expand("results/actions/views/{row}/model.pt", row=config["actions"]["ltc"]["views"]["rows"]),
        manifest="results/actions/test.csv",
        flows=view_test_flow(),
    output:
        figure=report(
            "results/actions/view_embeddings.png",
            caption="../report/view_embeddings.rst",
            category="7. Actions",
            labels={"figure": "view-study representations"},
        ),
    params:
        root=input_folder("manifest"),
        rows=lambda wildcards, input: keyed("--row", zip(config["actions"]["ltc"]["views"]["rows"], folders(input.models))),
        source=config["actions"]["ltc"]["views"]["input"],
        flows=lambda wildcards, input: repeated("--test-flow", input.flows),
        frame_size=quoted(*config["actions"]["ltc"]["frame_size"]),
        flow_scale=config["actions"]["ltc"]["flow_scale"],
        seed=config["seed"],
        tracking=tracking("plot_view_embeddings"),
        code=code_version("actions"),
    log:
        "logs/plot_view_embeddings/plot_view_embeddings.log",
    benchmark:
        "logs/benchmarks/plot_view_embeddings/plot_view_embeddings.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.actions view-figure {params.rows} --root {params.root:q} --test-manifest {input.manifest:q} "
        "--input {params.source:q} {params.flows} --frame-size {params.frame_size} --flow-scale {params.flow_scale:q} "
        "--seed {params.seed:q} --out {output.figure:q} {params.tracking} > {log:q} 2>&1"
