# Implicit filter sparsity (Mehta et al., 2019): every trained BodyNet stage and an optimiser study on
# one subnetwork, analysed for inactive filters and pruned; Mehta et al.'s Table D.1 and the
# per-layer plot. With evaluation.pruned the evaluation reads the pruned networks.


rule train_sparsity_study:
    input:
        train=bodynet_samples("train_split"),
        validation=bodynet_samples("validation_split"),
        inits=lambda wildcards: [stage_model(stage) for stage in STAGE_INITS[config["sparsity"]["study"]["stage"]]],
    output:
        model="results/sparsity/study/{setting}/model.pt",
        history="results/sparsity/study/{setting}/history.csv",
        curves="results/sparsity/study/{setting}/curves.png",
        predictions="results/sparsity/study/{setting}/predictions.png",
    wildcard_constraints:
        setting="|".join(re.escape(name) for name in STUDY_SETTINGS),
    params:
        out=output_folder("model"),
        stage=config["sparsity"]["study"]["stage"],
        inits=lambda wildcards, input: repeated("--init", input.inits),
        optimiser=lambda wildcards: cli_options(STUDY_SETTINGS[wildcards.setting]),
        iterations=config["sparsity"]["study"]["iterations"],
        batch=config["bodynet"]["batch_size"],
        options=network_options(config["sparsity"]["study"]["stage"]),
        seed=config["seed"],
        tracking=tracking("train_sparsity_study"),
        code=code_version("training"),
    threads: config["bodynet"]["threads"]
    resources:
        mem_mb=16000,
        runtime=720,
        gpu=GPU,
    log:
        "logs/train_sparsity_study/{setting}.log",
    benchmark:
        "logs/benchmarks/train_sparsity_study/{setting}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.training train --stage {params.stage:q} --train {input.train:q} --val {input.validation:q} "
        "{params.inits} --out {params.out:q} --iterations {params.iterations:q} "
        "--batch-size {params.batch:q} {params.optimiser} {params.options} --seed {params.seed:q} --threads {threads} "
        "{params.tracking} > {log:q} 2>&1"


rule analyse_sparsity:
    input:
        model=analysed_model,
        train=bodynet_samples("train_split"),
        validation=bodynet_samples("validation_split"),
    output:
        analysis="results/sparsity/analyses/{kind}/{name}/analysis.json",
        pruned="results/sparsity/analyses/{kind}/{name}/pruned.pt",
    wildcard_constraints:
        kind="bodynet|study",
    params:
        out=output_folder("analysis"),
        options=cli_options(
            {key: config["sparsity"][key] for key in ("gamma_threshold", "activation_threshold", "activation_samples",
                                                      "latency_batch")}
        ),
        tracking=tracking("analyse_sparsity"),
        code=code_version("sparsity"),
    threads: config["bodynet"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        "logs/analyse_sparsity/{kind}_{name}.log",
    benchmark:
        "logs/benchmarks/analyse_sparsity/{kind}_{name}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sparsity analyse --model {input.model:q} --train {input.train:q} --val {input.validation:q} "
        "--out {params.out:q} {params.options} --threads {threads} "
        "{params.tracking} > {log:q} 2>&1"


rule tabulate_sparsity:
    input:
        unpack(sparsity_analyses),
    output:
        table=report(
            "results/sparsity_table.csv",
            caption="../report/sparsity_table.rst",
            category="3. Filter sparsity",
            labels={"figure": "table"},
        ),
        figure=report(
            "results/sparsity/layers.png",
            caption="../report/sparsity_layers.rst",
            category="3. Filter sparsity",
            labels={"figure": "per layer"},
        ),
    params:
        analyses=lambda wildcards, input: keyed("--analysis", input.items()),
        tracking=tracking("tabulate_sparsity"),
        code=code_version("sparsity"),
    log:
        "logs/tabulate_sparsity/sparsity_table.log",
    benchmark:
        "logs/benchmarks/tabulate_sparsity/sparsity_table.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sparsity table {params.analyses} --out {output.table:q} --figure {output.figure:q} "
        "{params.tracking} > {log:q} 2>&1"
