# Flow as an input (Doersch & Zisserman's motion ablation): the 3D-pose network fed RGB, flow and 2D
# keypoints, with the rendered flow or the flow a method estimates, trained on the train
# split and measured on flow.as_input.test_split (the shifted domain by default). Its table
# is `motion_inputs` (evaluation.smk).


rule extract_input_flow:
    input:
        clips=lambda wildcards: split_clips(wildcards.split),
    output:
        flows=directory("results/flow/inputs/{split}/{method}"),
        scores="results/flow/inputs/{split}/{method}.json",
    params:
        release=lambda wildcards: release_contents(wildcards.split),
        root=lambda wildcards: clips_root(wildcards.split),
        quality=config["flow"]["jpeg_quality"],
        tracking=tracking("extract_input_flow"),
        code=code_version("flow"),
    resources:
        runtime=240,
    log:
        "logs/extract_input_flow/{split}_{method}.log",
    benchmark:
        "logs/benchmarks/extract_input_flow/{split}_{method}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.flow extract --root {params.root:q} --split {wildcards.split:q} --method {wildcards.method:q} "
        "--clips 0 --quality {params.quality:q} --out {output.flows:q} --scores {output.scores:q} {params.tracking} > {log:q} 2>&1"


rule prepare_flow_samples:
    input:
        clips=lambda wildcards: split_clips(wildcards.split),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        flows=input_flow,
    output:
        directory("results/bodynet/samples_flow/{source}/{split}"),
    wildcard_constraints:
        source="rendered|estimated",
    params:
        release=lambda wildcards: release_contents(wildcards.split),
        root=lambda wildcards: clips_root(wildcards.split),
        flow=lambda wildcards, input: input.flows if input.flows else "rendered",
        subtract_mean="--flow-subtract-mean" if config["flow"]["as_input"]["subtract_mean"] else "",
        frames=lambda wildcards: sample_frames(wildcards.split),
        sizes=sample_sizes(),
        models=body_model_options("--model"),
        tracking=tracking("prepare_flow_samples"),
        code=code_version("training"),
    resources:
        mem_mb=16000,
        runtime=120,
    log:
        "logs/prepare_flow_samples/{source}_{split}.log",
    benchmark:
        "logs/benchmarks/prepare_flow_samples/{source}_{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training prepare --root {params.root:q} --split {wildcards.split:q} --frames {params.frames:q} "
        "{params.sizes} {params.models} --flow {params.flow:q} {params.subtract_mean} --out {output:q} {params.tracking} "
        "> {log:q} 2>&1"


rule train_motion_input:
    input:
        train=lambda wildcards: flow_samples(wildcards.source, config["bodynet"]["samples"]["train_split"]),
        validation=lambda wildcards: flow_samples(wildcards.source, config["bodynet"]["samples"]["validation_split"]),
        inits=[stage_model("pose2d"), stage_model("segm")],
    output:
        model="results/motion/{source}/{inputs}/model.pt",
        history="results/motion/{source}/{inputs}/history.csv",
        curves="results/motion/{source}/{inputs}/curves.png",
        predictions="results/motion/{source}/{inputs}/predictions.png",
    wildcard_constraints:
        source="rendered|estimated",
        inputs="(rgb|pose2d|flow)([+](rgb|pose2d|flow))*",
    params:
        out=output_folder("model"),
        inits=lambda wildcards, input: repeated("--init", input.inits),
        inputs=lambda wildcards: f"--pose3d-inputs {wildcards.inputs.replace('+', ' ')}",
        iterations=config["flow"]["as_input"]["iterations"],
        batch=config["bodynet"]["batch_size"],
        rate=config["bodynet"]["learning_rate"],
        options=network_options("pose3d"),
        seed=config["seed"],
        tracking=tracking("train_motion_input"),
        code=code_version("training"),
    threads: config["bodynet"]["threads"]
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=GPU,
    log:
        "logs/train_motion_input/{source}_{inputs}.log",
    benchmark:
        "logs/benchmarks/train_motion_input/{source}_{inputs}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training train --stage pose3d {params.inputs} --train {input.train:q} --val {input.validation:q} "
        "{params.inits} --out {params.out:q} --iterations {params.iterations:q} "
        "--batch-size {params.batch:q} --learning-rate {params.rate:q} {params.options} --seed {params.seed:q} --threads {threads} {params.tracking} "
        "> {log:q} 2>&1"


rule evaluate_motion_input:
    input:
        model="results/motion/{source}/{inputs}/model.pt",
        samples=lambda wildcards: flow_samples(wildcards.source, config["flow"]["as_input"]["test_split"]),
        exemplars=readout_input(flow_samples("rendered", config["bodynet"]["samples"]["train_split"])),
    output:
        images="results/evaluation/motion/{source}/{inputs}/images.csv",
        summary="results/evaluation/motion/{source}/{inputs}/summary.json",
    wildcard_constraints:
        source="rendered|estimated",
        inputs="(rgb|pose2d|flow)([+](rgb|pose2d|flow))*",
    params:
        out=output_folder("images"),
        batch=config["evaluation"]["batch_size"],
        readout=readout_options(flow_samples("rendered", config["bodynet"]["samples"]["train_split"])),
        device=config["bodynet"]["device"],
        tracking=tracking("evaluate_motion_input"),
        code=code_version("evaluation"),
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    log:
        "logs/evaluate_motion_input/{source}_{inputs}.log",
    benchmark:
        "logs/benchmarks/evaluate_motion_input/{source}_{inputs}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation network --model {input.model:q} --method tasks --samples {input.samples:q} "
        "--out {params.out:q} --batch-size {params.batch:q} "
        "{params.readout} --device {params.device:q} --threads {threads} {params.tracking} > {log:q} 2>&1"


rule evaluate_motion_reference:
    input:
        samples=flow_samples("rendered", config["flow"]["as_input"]["test_split"]),
        train=flow_samples("rendered", config["bodynet"]["samples"]["train_split"]),
    output:
        images="results/evaluation/motion/reference/{reference}/images.csv",
        summary="results/evaluation/motion/reference/{reference}/summary.json",
    wildcard_constraints:
        reference="|".join(REFERENCES),
    params:
        out=output_folder("images"),
        batch=config["evaluation"]["batch_size"],
        readout=readout_options(flow_samples("rendered", config["bodynet"]["samples"]["train_split"])),
        train_images=config["evaluation"]["reference_train_images"],
        seed=config["seed"],
        device=config["bodynet"]["device"],
        tracking=tracking("evaluate_motion_reference"),
        code=code_version("evaluation"),
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    log:
        "logs/evaluate_motion_reference/{reference}.log",
    benchmark:
        "logs/benchmarks/evaluate_motion_reference/{reference}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation reference --kind {wildcards.reference:q} --method tasks --samples {input.samples:q} "
        "--train-samples {input.train:q} --train-images {params.train_images:q} --seed {params.seed:q} "
        "--out {params.out:q} --batch-size {params.batch:q} "
        "{params.readout} --device {params.device:q} --threads {threads} {params.tracking} > {log:q} 2>&1"
