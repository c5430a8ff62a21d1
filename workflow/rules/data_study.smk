# SURREAL's data studies (Varol et al., "Learning from Synthetic Humans", Figure 3-9): its
# segmentation and depth networks trained on other data, measured on the test images.
# Amount: every frame of a share of the training clips, results/data_study/clips/<percent>/.
# Clothing: the training split rendered again, each clip as drawn before (motion, person,
# camera, light, background) but dressed from only the bank's first N outfits,
# results/data_study/outfits/<N>/.
# Compression: the training and test splits rendered again with their frames also stored
# losslessly (PNG), which the samples then read in place of the mp4, results/data_study/lossless/.


rule render_study_clips:
    input:
        motions="resources/motions/{split}.npz",
        backgrounds="resources/backgrounds/{split}",
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        clips=directory("results/data_study/{variant}/surreal/cmu/{split}/run{run}"),
        manifest="results/data_study/{variant}/surreal/{split}_run{run}.csv",
    wildcard_constraints:
        variant=STUDY_RENDERS,
    params:
        root=lambda wildcards, output: Path(output.clips).parents[2],
        models=body_model_options("--model"),
        seed=config["seed"],
        options=render_options,
        variant=study_render_options,
        tracking=tracking("render_study_clips"),
        code=code_version("synthesis"),
    threads: config["synthesis"]["workers"]
    resources:
        mem_mb=8000,
        runtime=480,
    log:
        "logs/render_study_clips/{variant}/{split}_run{run}.log",
    benchmark:
        "logs/benchmarks/render_study_clips/{variant}/{split}_run{run}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis render --split {wildcards.split:q} --run {wildcards.run:q} "
        "--motions {input.motions:q} --backgrounds {input.backgrounds:q} {params.models} "
        "--root {params.root:q} --manifest {output.manifest:q} --seed {params.seed:q} {params.options} "
        "{params.variant} --workers {threads} {params.tracking} > {log:q} 2>&1"


rule prepare_study_samples:
    input:
        clips=expand("results/data_study/{{variant}}/surreal/{{split}}_run{run}.csv", run=RUNS),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        directory("results/data_study/{variant}/samples/{split}"),
    wildcard_constraints:
        variant=STUDY_RENDERS,
    params:
        root=lambda wildcards, input: folders(input.clips)[0],
        frames=lambda wildcards: sample_frames(wildcards.split),
        sizes=sample_sizes(),
        models=body_model_options("--model"),
        tracking=tracking("prepare_study_samples"),
        code=code_version("training"),
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        "logs/prepare_study_samples/{variant}/{split}.log",
    benchmark:
        "logs/benchmarks/prepare_study_samples/{variant}/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training prepare --root {params.root:q} --split {wildcards.split:q} --frames {params.frames:q} "
        "{params.sizes} {params.models} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule train_data_study:
    input:
        train=study_samples("train_split"),
        validation=study_samples("validation_split"),
        inits=lambda wildcards: (
            [f"results/data_study/{wildcards.study}/segm/model.pt"] if wildcards.stage == "depth" else []
        ),
    output:
        model="results/data_study/{study}/{stage}/model.pt",
        history="results/data_study/{study}/{stage}/history.csv",
        curves="results/data_study/{study}/{stage}/curves.png",
        predictions="results/data_study/{study}/{stage}/predictions.png",
    wildcard_constraints:
        study=DATA_STUDIES,
        stage="segm|depth",
    params:
        out=output_folder("model"),
        inits=lambda wildcards, input: repeated("--init", input.inits),
        share=study_clip_share,
        length=lambda wildcards: stage_schedule(wildcards.stage),
        options=lambda wildcards: network_options(wildcards.stage),
        seed=config["seed"],
        tracking=tracking("train_data_study"),
        code=code_version("training"),
    threads: config["bodynet"]["threads"]
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=GPU,
    log:
        "logs/train_data_study/{study}/{stage}.log",
    benchmark:
        "logs/benchmarks/train_data_study/{study}/{stage}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training train --stage {wildcards.stage:q} --clip-share {params.share:q} "
        "--train {input.train:q} --val {input.validation:q} {params.inits} "
        "--out {params.out:q} {params.length} "
        "{params.options} --seed {params.seed:q} --threads {threads} {params.tracking} > {log:q} 2>&1"
