rule prepare_bodynet_samples:
    input:
        clips=lambda wildcards: split_clips(wildcards.split),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        directory("results/bodynet/samples/{split}"),
    params:
        release=lambda wildcards: release_contents(wildcards.split),
        root=lambda wildcards: clips_root(wildcards.split),
        frames=lambda wildcards: sample_frames(wildcards.split),
        sizes=sample_sizes(),
        models=body_model_options("--model"),
        tracking=tracking("prepare_bodynet_samples"),
        code=code_version("training"),
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        "logs/prepare_bodynet_samples/{split}.log",
    benchmark:
        "logs/benchmarks/prepare_bodynet_samples/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training prepare --root {params.root:q} --split {wildcards.split:q} "
        "--frames {params.frames:q} {params.sizes} {params.models} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule train_bodynet:
    input:
        train=bodynet_samples("train_split"),
        validation=bodynet_samples("validation_split"),
        inits=stage_inits,
    output:
        model=stage_model("{stage}"),
        history="results/bodynet/{stage}/history.csv",
        curves=report(
            "results/bodynet/{stage}/curves.png",
            caption="../report/training_curves.rst",
            category="BodyNet training",
            subcategory="{stage}",
            labels={"stage": "{stage}", "figure": "curves"},
        ),
        predictions=report(
            "results/bodynet/{stage}/predictions.png",
            caption="../report/training_predictions.rst",
            category="BodyNet training",
            subcategory="{stage}",
            labels={"stage": "{stage}", "figure": "predictions"},
        ),
    params:
        out=output_folder("history"),
        inits=lambda wildcards, input: repeated("--init", input.inits),
        length=lambda wildcards: stage_schedule(wildcards.stage),
        options=lambda wildcards: network_options(wildcards.stage),
        seed=config["seed"],
        tracking=tracking("train_bodynet"),
        code=code_version("training"),
    threads: stage_threads
    resources:
        mem_mb=16000,
        runtime=2880,
        gpu=GPU,
    log:
        "logs/train_bodynet/{stage}.log",
    benchmark:
        "logs/benchmarks/train_bodynet/{stage}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training train --stage {wildcards.stage:q} --train {input.train:q} "
        "--val {input.validation:q} {params.inits} --out {params.out:q} {params.length} "
        "{params.options} --seed {params.seed:q} --threads {threads} --register "
        "{params.tracking} > {log:q} 2>&1"


# The 3D-pose and voxel networks fed other inputs than BodyNet's (the paper's Tables 4.8
# and 4.1), e.g. results/bodynet/inputs/voxels/segm+pose3d/model.pt.
rule train_input_variant:
    input:
        train=bodynet_samples("train_split"),
        validation=bodynet_samples("validation_split"),
        inits=variant_inits,
    output:
        model="results/bodynet/inputs/{network}/{inputs}/model.pt",
        history="results/bodynet/inputs/{network}/{inputs}/history.csv",
        curves="results/bodynet/inputs/{network}/{inputs}/curves.png",
        predictions="results/bodynet/inputs/{network}/{inputs}/predictions.png",
    params:
        out=output_folder("model"),
        inits=lambda wildcards, input: repeated("--init", input.inits),
        inputs=lambda wildcards: f"--{'pose3d' if wildcards.network == 'pose3d' else 'voxel'}-inputs "
        + wildcards.inputs.replace("+", " "),
        length=lambda wildcards: stage_schedule(wildcards.network, variant=True),
        options=lambda wildcards: network_options(wildcards.network),
        seed=config["seed"],
        tracking=tracking("train_input_variant"),
        code=code_version("training"),
    threads: config["bodynet"]["threads"]
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=GPU,
    log:
        "logs/train_input_variant/{network}_{inputs}.log",
    benchmark:
        "logs/benchmarks/train_input_variant/{network}_{inputs}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training train --stage {wildcards.network:q} {params.inputs} --train {input.train:q} "
        "--val {input.validation:q} {params.inits} --out {params.out:q} "
        "{params.length} {params.options} --seed {params.seed:q} --threads {threads} {params.tracking} > {log:q} 2>&1"


# The stages the learning curves draw.
LEARNING_CURVE_STAGES = [stage for stages in CURVE_PANELS.values() for stage in stages]


rule plot_learning_curves:
    input:
        histories=expand("results/bodynet/{stage}/history.csv", stage=LEARNING_CURVE_STAGES),
        references=expand("results/evaluation/reference/{reference}/summary.json", reference=REFERENCES),
    output:
        report(
            "results/bodynet/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="BodyNet training",
            labels={"stage": "all", "figure": "learning curves"},
        ),
    params:
        histories=lambda wildcards, input: keyed("--history", zip(LEARNING_CURVE_STAGES, input.histories)),
        references=lambda wildcards, input: keyed("--reference", zip(REFERENCES, input.references)),
        batch=config["bodynet"]["batch_size"],
        tracking=tracking("plot_learning_curves"),
        code=code_version("training"),
    log:
        "logs/plot_learning_curves/learning_curves.log",
    benchmark:
        "logs/benchmarks/plot_learning_curves/learning_curves.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training curves {params.histories} {params.references} --batch-size {params.batch:q} "
        "--out {output:q} {params.tracking} > {log:q} 2>&1"
