from dify_plugin import DifyPluginEnv, Plugin

# MAX_REQUEST_TIMEOUT only matters for serverless installs; each tool call
# carries its own deadline (the provider's "Request timeout", at most 540 s).
plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=600))

if __name__ == "__main__":
    plugin.run()
