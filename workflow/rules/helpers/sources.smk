# Helpers of the rules in workflow/rules/sources.smk alone: their inputs, options and outputs.


def download_options(source):
    return cli_options({key: source[key] for key in ("url", "sha256", "md5", "size") if source.get(key)})


def surreal_url(wildcards):
    base = config["sources"]["surreal"]["base_url"].rstrip("/")
    return f"{base}/{wildcards.file}"
