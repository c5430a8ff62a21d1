# SURREAL's data studies (Varol et al., "Learning from Synthetic Humans", Figure 3-9): its
# segmentation and depth networks trained on less data, measured on the usual test images.
# Amount: every frame of a share of the training clips, results/data_study/clips/<percent>/.
# Clothing: the training split rendered again, each clip as drawn before (motion, person,
# camera, light, background) but dressed from only the bank's first N outfits,
# results/data_study/outfits/<N>/.


rule render_outfit_clips:
    input:
        motions="resources/motions/{split}.npz",
        backgrounds="resources/backgrounds/{split}",
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        clips=directory("results/data_study/outfits/{outfits}/surreal/cmu/{split}/run{run}"),
        manifest="results/data_study/outfits/{outfits}/surreal/{split}_run{run}.csv",
    wildcard_constraints:
        outfits="[0-9]+",
    params:
        root=lambda wildcards, output: Path(output.clips).parents[2],
        models=" ".join(f"--model {g}={body_model_file(g)}" for g in config["synthesis"]["genders"]),
        seed=config["seed"],
        options=render_options,
        tracking=tracking("render_outfit_clips"),
        code=code_version("synthesis"),
    threads: config["synthesis"]["workers"]
    resources:
        **cluster_resources("render_outfit_clips"),
    log:
        "logs/render_outfit_clips/{outfits}_{split}_run{run}.log",
    benchmark:
        "logs/benchmarks/render_outfit_clips/{outfits}_{split}_run{run}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis render --split {wildcards.split} --run {wildcards.run} "
        "--motions {input.motions} --backgrounds {input.backgrounds} {params.models} "
        "--root {params.root} --manifest {output.manifest} --seed {params.seed} {params.options} "
        "--outfits-used {wildcards.outfits} --workers {threads} {params.tracking} > {log} 2>&1"


rule prepare_outfit_samples:
    input:
        clips=expand(
            "results/data_study/outfits/{{outfits}}/surreal/{split}_run{run}.csv",
            split=config["bodynet"]["samples"]["train_split"],
            run=RUNS,
        ),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        directory("results/data_study/outfits/{outfits}/samples"),
    wildcard_constraints:
        outfits="[0-9]+",
    params:
        root=lambda wildcards: f"results/data_study/outfits/{wildcards.outfits}/surreal",
        split=config["bodynet"]["samples"]["train_split"],
        frames=sample_frames(config["bodynet"]["samples"]["train_split"]),
        sizes=sample_sizes(),
        models=" ".join(f"--model {g}={body_model_file(g)}" for g in config["synthesis"]["genders"]),
        tracking=tracking("prepare_outfit_samples"),
        code=code_version("training"),
    resources:
        **cluster_resources("prepare_outfit_samples"),
    log:
        "logs/prepare_outfit_samples/{outfits}.log",
    benchmark:
        "logs/benchmarks/prepare_outfit_samples/{outfits}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training prepare --root {params.root} --split {params.split} --frames {params.frames} "
        "{params.sizes} {params.models} --out {output} {params.tracking} > {log} 2>&1"


rule train_data_study:
    input:
        train=study_training_samples,
        validation=bodynet_samples("validation_split"),
        inits=lambda wildcards: (
            [f"results/data_study/{wildcards.study}/{wildcards.amount}/segm/model.pt"]
            if wildcards.stage == "depth"
            else []
        ),
    output:
        model="results/data_study/{study}/{amount}/{stage}/model.pt",
        history="results/data_study/{study}/{amount}/{stage}/history.csv",
        curves="results/data_study/{study}/{amount}/{stage}/curves.png",
        predictions="results/data_study/{study}/{amount}/{stage}/predictions.png",
    wildcard_constraints:
        study="clips|outfits",
        amount="[0-9]+",
        stage="segm|depth",
    params:
        inits=lambda wildcards, input: " ".join(f"--init {path}" for path in input.inits),
        share=lambda wildcards: int(wildcards.amount) / 100 if wildcards.study == "clips" else 1,
        length=lambda wildcards: stage_schedule(wildcards.stage),
        options=network_options(),
        seed=config["seed"],
        tracking=tracking("train_data_study"),
        code=code_version("training"),
    threads: config["bodynet"]["threads"]
    resources:
        **cluster_resources("train_data_study"),
    log:
        "logs/train_data_study/{study}_{amount}_{stage}.log",
    benchmark:
        "logs/benchmarks/train_data_study/{study}_{amount}_{stage}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training train --stage {wildcards.stage} --clip-share {params.share} "
        "--train {input.train} --val {input.validation} {params.inits} "
        "--out results/data_study/{wildcards.study}/{wildcards.amount}/{wildcards.stage} {params.length} "
        "{params.options} --seed {params.seed} --threads {threads} {params.tracking} > {log} 2>&1"
