"""The runtime that ships in the Lambda zip: API Gateway event → Starlette app → the MCP SDK → response.

Nothing here imports CDK, and nothing imports boto3 (or botocore's client) until a request actually touches AWS.
"""
