"""python -m tests.fake_openai --port 8099 [--latency 1.0] [--rpm 3000]"""

from tests.fake_openai.server import main

main()
