# The trained networks on the user's own images: every image in images/<name>/ gets its
# joints, body and pictures in results/predict/<name>/ (pipeline.predict).


rule predict_images:
    input:
        images="images/{name}",
        model=stage_model(config["predict"]["stage"]),
        body_model=lambda wildcards: body_model_file(config["predict"]["gender"], key="predict.gender"),
        pose_prior=pose_prior_input(),
    output:
        directory("results/predict/{name}"),
    params:
        prior=lambda wildcards, input: f"--pose-prior {input.pose_prior}" if input.pose_prior else "",
        fit=cli_options({"joint_steps": config["evaluation"]["fit"]["joint_steps"],
                         "fit_steps": config["evaluation"]["fit"]["steps"],
                         "batch_size": config["evaluation"]["batch_size"]}),
        device=config["bodynet"]["device"],
        tracking=tracking("predict_images"),
        code=code_version("predict"),
    threads: config["evaluation"]["threads"]
    resources:
        **cluster_resources("predict_images"),
    log:
        "logs/predict_images/{name}.log",
    benchmark:
        "logs/benchmarks/predict_images/{name}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.predict {input.images}/* --model {input.model} --body-model {input.body_model} "
        "{params.prior} {params.fit} --out {output} --device {params.device} --threads {threads} "
        "{params.tracking} > {log} 2>&1"
