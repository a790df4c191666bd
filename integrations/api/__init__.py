"""The HTTP API for programs: test-report uploads (`launches`) and their OpenAPI document."""
