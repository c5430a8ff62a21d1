rule prepare_motions:
    output:
        "resources/motions/{split}.npz",
    params:
        source=motion_options,
        min_seconds=config["synthesis"]["motions"]["min_seconds"],
        mirror="--mirror" if config["synthesis"]["motions"]["mirror"] else "",
        variants=variant_options,
        tracking=tracking("prepare_motions"),
        code=code_version("synthesis"),
    resources:
        **cluster_resources("prepare_motions"),
    log:
        "logs/prepare_motions/{split}.log",
    benchmark:
        "logs/benchmarks/prepare_motions/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis motions --split {wildcards.split} {params.source} "
        "--min-seconds {params.min_seconds} {params.mirror} {params.variants} --out {output} {params.tracking} > {log} 2>&1"


rule collect_backgrounds:
    output:
        directory("resources/backgrounds/{split}"),
    params:
        source=background_options,
        tracking=tracking("collect_backgrounds"),
        code=code_version("synthesis"),
    resources:
        **cluster_resources("collect_backgrounds"),
    log:
        "logs/collect_backgrounds/{split}.log",
    benchmark:
        "logs/benchmarks/collect_backgrounds/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis backgrounds --split {wildcards.split} {params.source} "
        "--out {output} {params.tracking} > {log} 2>&1"


rule render_clips:
    input:
        motions="resources/motions/{split}.npz",
        backgrounds="resources/backgrounds/{split}",
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        clips=directory("results/surreal/cmu/{split}/run{run}"),
        manifest="results/surreal/{split}_run{run}.csv",
    params:
        root=lambda wildcards, output: Path(output.clips).parents[2],
        models=" ".join(f"--model {g}={body_model_file(g)}" for g in config["synthesis"]["genders"]),
        seed=config["seed"],
        options=render_options,
        tracking=tracking("render_clips"),
        code=code_version("synthesis"),
    threads: config["synthesis"]["workers"]
    resources:
        **cluster_resources("render_clips"),
    log:
        "logs/render_clips/{split}_run{run}.log",
    benchmark:
        "logs/benchmarks/render_clips/{split}_run{run}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis render --split {wildcards.split} --run {wildcards.run} "
        "--motions {input.motions} --backgrounds {input.backgrounds} {params.models} "
        "--root {params.root} --manifest {output.manifest} --seed {params.seed} {params.options} "
        "--workers {threads} {params.tracking} > {log} 2>&1"


rule plot_contact_sheet:
    input:
        expand("results/surreal/cmu/{{split}}/run{run}", run=RUNS),
    output:
        sheet=report(
            "results/synthesis/contact_sheet_{split}.png",
            caption="../report/contact_sheet.rst",
            category="Synthetic humans",
            labels={"split": "{split}", "figure": "passes"},
        ),
        animation=report(
            "results/synthesis/clips_{split}.png",
            caption="../report/clip_animation.rst",
            category="Synthetic humans",
            labels={"split": "{split}", "figure": "clips playing"},
        ),
    params:
        root=lambda wildcards, input: Path(input[0]).parents[2],
        tracking=tracking("plot_contact_sheet"),
        code=code_version("synthesis"),
    resources:
        **cluster_resources("plot_contact_sheet"),
    log:
        "logs/plot_contact_sheet/{split}.log",
    benchmark:
        "logs/benchmarks/plot_contact_sheet/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis sheet --root {params.root} --split {wildcards.split} "
        "--out {output.sheet} --animation {output.animation} {params.tracking} > {log} 2>&1"
