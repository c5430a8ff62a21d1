# Real-time 3D pose: VNect's location-map network on a SelecSLS backbone, and the direct
# regression the thesis compares it with, trained on the BodyNet samples and measured on the
# same test crops as BodyNet's 3D pose, whole and with their corners jittered (vnect_table).

VNECT_HEADS = {"vnect": "location_maps", "vnect_regression": "regression"}


rule train_vnect:
    input:
        train=bodynet_samples("train_split"),
        validation=bodynet_samples("validation_split"),
    output:
        model="results/realtime/{variant}/model.pt",
        history="results/realtime/{variant}/history.csv",
        curves=report(
            "results/realtime/{variant}/curves.png",
            caption="../report/realtime_curves.rst",
            category="Real-time 3D pose",
            labels={"network": "{variant}"},
        ),
    wildcard_constraints:
        variant="|".join(VNECT_HEADS),
    params:
        out=output_folder("model"),
        head=lambda wildcards: VNECT_HEADS[wildcards.variant],
        options=cli_options(config["realtime"]["vnect"]),
        seed=config["seed"],
        tracking=tracking("train_vnect"),
        code=code_version("realtime"),
    threads: config["realtime"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    log:
        "logs/train_vnect/{variant}.log",
    benchmark:
        "logs/benchmarks/train_vnect/{variant}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.realtime train --train {input.train:q} --val {input.validation:q} --head {params.head:q} {params.options} "
        "--seed {params.seed:q} --threads {threads} --out {params.out:q} {params.tracking} > {log:q} 2>&1"


rule evaluate_vnect:
    input:
        model="results/realtime/{variant}/model.pt",
        samples=bodynet_samples("validation_split"),
    output:
        summary="results/evaluation/realtime/{variant}/summary.json",
        images="results/evaluation/realtime/{variant}/images.csv",
    wildcard_constraints:
        variant="|".join(VNECT_HEADS),
    params:
        out=output_folder("summary"),
        batch_size=config["evaluation"]["batch_size"],
        tracking=tracking("evaluate_vnect"),
        code=code_version("realtime"),
    threads: config["realtime"]["threads"]
    log:
        "logs/evaluate_vnect/{variant}.log",
    benchmark:
        "logs/benchmarks/evaluate_vnect/{variant}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.realtime evaluate --model {input.model:q} --samples {input.samples:q} "
        "--batch-size {params.batch_size:q} --threads {threads} --out {params.out:q} {params.tracking} > {log:q} 2>&1"


# The same test crops with each corner of the box moved at random (the thesis' Table 5.2: an
# inexact person detector); the same moves for both networks.
rule evaluate_vnect_jittered:
    input:
        model="results/realtime/{variant}/model.pt",
        samples=bodynet_samples("validation_split"),
    output:
        summary="results/evaluation/realtime/{variant}_jittered/summary.json",
        images="results/evaluation/realtime/{variant}_jittered/images.csv",
    wildcard_constraints:
        variant="|".join(VNECT_HEADS),
    params:
        out=output_folder("summary"),
        batch_size=config["evaluation"]["batch_size"],
        crop_jitter=config["realtime"]["crop_jitter"],
        seed=config["seed"],
        tracking=tracking("evaluate_vnect_jittered"),
        code=code_version("realtime"),
    threads: config["realtime"]["threads"]
    log:
        "logs/evaluate_vnect_jittered/{variant}.log",
    benchmark:
        "logs/benchmarks/evaluate_vnect_jittered/{variant}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.realtime evaluate --model {input.model:q} --samples {input.samples:q} "
        "--batch-size {params.batch_size:q} --crop-jitter {params.crop_jitter:q} --seed {params.seed:q} "
        "--threads {threads} --out {params.out:q} {params.tracking} > {log:q} 2>&1"


# Every frame of the test clips: the raw joints against the 1 Euro filtered ones and the
# kinematic fits (the thesis' Fig. 8.3 in kind).
rule evaluate_vnect_video:
    input:
        model="results/realtime/vnect/model.pt",
        samples=bodynet_samples("validation_split"),
        clips=split_clips(config["bodynet"]["samples"]["validation_split"]),
    output:
        table="results/vnect_video_table.csv",
        clips="results/realtime/vnect/video_clips.csv",
    params:
        root=lambda wildcards: clips_root(config["bodynet"]["samples"]["validation_split"]),
        split=config["bodynet"]["samples"]["validation_split"],
        clip_count=cli_options({"clip_count": config["realtime"]["video_clips"]} if config["realtime"]["video_clips"] else {}),
        seed=config["seed"],
        tracking=tracking("evaluate_vnect_video"),
        code=code_version("realtime"),
    threads: config["realtime"]["threads"]
    log:
        "logs/evaluate_vnect_video/vnect.log",
    benchmark:
        "logs/benchmarks/evaluate_vnect_video/vnect.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.realtime video --model {input.model:q} --root {params.root:q} --split {params.split:q} "
        "--samples {input.samples:q} {params.clip_count} --seed {params.seed:q} --threads {threads} --clips {output.clips:q} "
        "--out {output.table:q} {params.tracking} > {log:q} 2>&1"


# The real-time pipeline on the user's own videos: videos/<name>.mp4 gets each frame's 3D
# skeleton and the video with it drawn over in results/realtime/track/<name>/.
rule track_video:
    input:
        video="videos/{name}.mp4",
        model="results/realtime/vnect/model.pt",
    output:
        directory("results/realtime/track/{name}"),
    params:
        device=config["bodynet"]["device"],
        tracking=tracking("track_video"),
        code=code_version("realtime"),
    threads: config["realtime"]["threads"]
    log:
        "logs/track_video/{name}.log",
    benchmark:
        "logs/benchmarks/track_video/{name}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.realtime track {input.video:q} --model {input.model:q} --device {params.device:q} "
        "--threads {threads} --out {output:q} {params.tracking} > {log:q} 2>&1"
