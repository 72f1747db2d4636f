from pyfeat.cli import main

raise SystemExit(main())
