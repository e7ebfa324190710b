import sys

from ccn.launch import main

sys.exit(main())
