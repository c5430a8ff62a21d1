# Temporally coherent meshes from video (Liu, Akhtar & Mian, "Temporally Coherent Full 3D Mesh
# Human Pose Recovery from Monocular Video", 2019): the synthesis motions seen by four telephoto
# cameras that follow the pelvis, the frame model and the video model trained on them, the table.


rule render_video_mesh_clips:
    input:
        motions="resources/motions/{split}.npz",
        backgrounds="resources/backgrounds/{split}",
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        clips=directory("results/video_mesh/{motions}/cmu/{split}"),
        manifest="results/video_mesh/{motions}/{split}.csv",
    wildcard_constraints:
        motions="captures|transitions",
        split="train|test",
    params:
        models=body_model_options("--model"),
        options=video_mesh_render_options,
        seed=config["seed"],
        tracking=tracking("render_video_mesh_clips"),
        code=code_version("video_mesh"),
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        "logs/render_video_mesh_clips/{motions}_{split}.log",
    benchmark:
        "logs/benchmarks/render_video_mesh_clips/{motions}_{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.video_mesh render --split {wildcards.split:q} --motions {input.motions:q} {params.models} "
        "--backgrounds {input.backgrounds:q} {params.options} --seed {params.seed:q} "
        "--manifest {output.manifest:q} {params.tracking} > {log:q} 2>&1"


rule train_video_mesh:
    input:
        unpack(video_mesh_train_inputs),
    output:
        model="results/video_mesh/{kind}/model.pt",
        history="results/video_mesh/{kind}/history.csv",
        curves="results/video_mesh/{kind}/curves.png",
    wildcard_constraints:
        kind="|".join(VIDEO_MESH_KINDS),
    params:
        model=lambda wildcards: wildcards.kind.partition("_")[0],
        init=lambda wildcards, input: f"--init {quoted(input.init)}" if "init" in input.keys() else "",
        out=output_folder("model"),
        options=video_mesh_train_options,
        seed=config["seed"],
        tracking=tracking("train_video_mesh"),
        code=code_version("video_mesh"),
    threads: config["video_mesh"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
    log:
        "logs/train_video_mesh/{kind}.log",
    benchmark:
        "logs/benchmarks/train_video_mesh/{kind}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.video_mesh train --kind {params.model:q} {params.init} "
        "--train-manifest {input.train_manifests:q} --test-manifest {input.test_manifest:q} --body {input.body:q} "
        "{params.options} --seed {params.seed:q} --threads {threads} --out {params.out:q} {params.tracking} > {log:q} 2>&1"


rule evaluate_video_mesh:
    input:
        manifest="results/video_mesh/captures/test.csv",
        clips="results/video_mesh/captures/cmu/test",
        frame="results/video_mesh/frame/model.pt",
        video="results/video_mesh/video/model.pt",
        smplify=smplify_model(),
        pose_prior=pose_prior_input(),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        body=video_mesh_body,
    output:
        clips="results/video_mesh/test_clips.csv",
        table="results/video_mesh_table.csv",
        figure=report(
            "results/video_mesh/clip.png",
            caption="../report/video_mesh_clip.rst",
            category="Meshes from video",
        ),
    params:
        models=body_model_options("--model"),
        fit=video_mesh_smplify_options(),
        seed=config["seed"],
        tracking=tracking("evaluate_video_mesh"),
        code=code_version("video_mesh"),
    threads: config["video_mesh"]["threads"]
    log:
        "logs/evaluate_video_mesh/evaluate.log",
    benchmark:
        "logs/benchmarks/evaluate_video_mesh/evaluate.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.video_mesh evaluate --manifest {input.manifest:q} "
        "--frame {input.frame:q} --video {input.video:q} --smplify-model {input.smplify:q} {params.fit} "
        "{params.models} --body {input.body:q} "
        "--seed {params.seed:q} --threads {threads} --clips {output.clips:q} --out {output.table:q} "
        "--figure {output.figure:q} {params.tracking} > {log:q} 2>&1"


rule evaluate_video_mesh_losses:
    input:
        unpack(lambda wildcards: {f"row_{row}": path for row, path in video_mesh_loss_models().items()}),
        manifest="results/video_mesh/captures/test.csv",
        clips="results/video_mesh/captures/cmu/test",
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        body=video_mesh_body,
    output:
        table="results/video_mesh_losses.csv",
        orderings="results/video_mesh/losses_orderings.csv",
    params:
        rows=lambda wildcards, input: keyed("--row", ((row, input[f"row_{row}"]) for row in video_mesh_loss_models())),
        models=body_model_options("--model"),
        seed=config["seed"],
        tracking=tracking("evaluate_video_mesh_losses"),
        code=code_version("video_mesh"),
    threads: config["video_mesh"]["threads"]
    log:
        "logs/evaluate_video_mesh_losses/evaluate.log",
    benchmark:
        "logs/benchmarks/evaluate_video_mesh_losses/evaluate.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.video_mesh losses --manifest {input.manifest:q} {params.rows} "
        "{params.models} --body {input.body:q} --seed {params.seed:q} --threads {threads} "
        "--out {output.table:q} --orderings {output.orderings:q} {params.tracking} > {log:q} 2>&1"


rule evaluate_video_mesh_transitions:
    input:
        unpack(lambda wildcards: {f"row_{row}": f"results/video_mesh/{row}/model.pt" for row in VIDEO_MESH_TRANSITION_ROWS}),
        manifests=expand("results/video_mesh/{motions}/test.csv", motions=("captures", "transitions")),
        clips=expand("results/video_mesh/{motions}/cmu/test", motions=("captures", "transitions")),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        body=video_mesh_body,
    output:
        table="results/video_mesh_transitions.csv",
        orderings="results/video_mesh/transitions_orderings.csv",
    params:
        manifests=lambda wildcards, input: repeated("--manifest", input.manifests),
        rows=lambda wildcards, input: keyed("--row", ((row, input[f"row_{row}"]) for row in VIDEO_MESH_TRANSITION_ROWS)),
        models=body_model_options("--model"),
        seed=config["seed"],
        tracking=tracking("evaluate_video_mesh_transitions"),
        code=code_version("video_mesh"),
    threads: config["video_mesh"]["threads"]
    log:
        "logs/evaluate_video_mesh_transitions/evaluate.log",
    benchmark:
        "logs/benchmarks/evaluate_video_mesh_transitions/evaluate.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.video_mesh transitions {params.manifests} {params.rows} {params.models} "
        "--body {input.body:q} --seed {params.seed:q} --threads {threads} "
        "--out {output.table:q} --orderings {output.orderings:q} {params.tracking} > {log:q} 2>&1"
