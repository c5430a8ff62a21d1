# Motion for sim-to-real 3D pose (Doersch & Zisserman, "Sim2real transfer learning for 3D human
# pose estimation: motion to the rescue", 2019): the rendered clips recomposed over a hand-held
# camera's video, the temporal model trained on each input and construction, the table.


rule prepare_sim2real_clips:
    input:
        clips=lambda wildcards: split_clips(wildcards.split),
        backgrounds="resources/backgrounds/{split}",
    output:
        "results/sim2real/clips/{construction}/{split}.npz",
    wildcard_constraints:
        construction="full|no_occlusions|untracked|static",
    params:
        release=lambda wildcards: release_contents(wildcards.split),
        root=lambda wildcards: clips_root(wildcards.split),
        options=sim2real_prepare_options(),
        seed=config["seed"],
        tracking=tracking("prepare_sim2real_clips"),
        code=code_version("sim2real"),
    log:
        "logs/prepare_sim2real_clips/{construction}_{split}.log",
    benchmark:
        "logs/benchmarks/prepare_sim2real_clips/{construction}_{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sim2real prepare --root {params.root:q} --split {wildcards.split:q} "
        "--backgrounds {input.backgrounds:q} --construction {wildcards.construction:q} {params.options} "
        "--seed {params.seed:q} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule train_sim2real:
    input:
        train="results/sim2real/clips/{construction}/train.npz",
        test=f"results/sim2real/clips/full/{config['sim2real']['test_split']}.npz",
    output:
        model="results/sim2real/{construction}/{inputs}/{frames}_frames/model.pt",
        history="results/sim2real/{construction}/{inputs}/{frames}_frames/history.csv",
        curves="results/sim2real/{construction}/{inputs}/{frames}_frames/curves.png",
    wildcard_constraints:
        construction="full|no_occlusions|untracked|static",
        inputs="(rgb|flow|keypoints)([+](rgb|flow|keypoints))*",
        frames=r"\d+",
    params:
        out=output_folder("model"),
        options=sim2real_train_options,
        seed=config["seed"],
        tracking=tracking("train_sim2real"),
        code=code_version("sim2real"),
    threads: config["sim2real"]["threads"]
    resources:
        runtime=240,
    log:
        "logs/train_sim2real/{construction}_{inputs}_{frames}.log",
    benchmark:
        "logs/benchmarks/train_sim2real/{construction}_{inputs}_{frames}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sim2real train --train {input.train:q} --test {input.test:q} --inputs {wildcards.inputs:q} "
        "{params.options} --seed {params.seed:q} --threads {threads} --out {params.out:q} {params.tracking} > {log:q} 2>&1"


rule evaluate_sim2real:
    input:
        unpack(lambda wildcards: {f"row_{row}": path for row, path in sim2real_rows().items()}),
        test=f"results/sim2real/clips/full/{config['sim2real']['test_split']}.npz",
        train="results/sim2real/clips/full/train.npz",
    output:
        table="results/sim2real_table.csv",
        clips="results/sim2real/test_clips.csv",
        orderings="results/sim2real/orderings.csv",
    params:
        rows=lambda wildcards, input: keyed("--row", ((row, input[f"row_{row}"]) for row in sim2real_rows())),
        seed=config["seed"],
        tracking=tracking("evaluate_sim2real"),
        code=code_version("sim2real"),
    threads: config["sim2real"]["threads"]
    log:
        "logs/evaluate_sim2real/evaluate.log",
    benchmark:
        "logs/benchmarks/evaluate_sim2real/evaluate.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sim2real evaluate --test {input.test:q} --train {input.train:q} {params.rows} "
        "--seed {params.seed:q} --threads {threads} --clips {output.clips:q} --out {output.table:q} "
        "--orderings {output.orderings:q} {params.tracking} > {log:q} 2>&1"
