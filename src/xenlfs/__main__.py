from xenlfs.cli import main

raise SystemExit(main())
