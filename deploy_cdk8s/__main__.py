import sys

from deploy_cdk8s.deploy import main

sys.exit(main())
