from trebalink.cli import main

raise SystemExit(main())
