"""The RevOps Suite bundle: all three servers, the demo walkthrough and the benchmark."""
