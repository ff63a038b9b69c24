from nsprog.cli import main

raise SystemExit(main())
